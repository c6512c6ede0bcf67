import { hostname } from 'node:os';

/**
 * The instance name: which scratchd, of several side by side, wrote a Kafka
 * message, a day file, a loss window. A safe token, because it goes into file
 * names ({instance} of backends.file.name), Kafka headers and Prometheus
 * labels: no '/', no leading '.', no spaces or quotes. config.schema.json has
 * the same pattern; this one also checks the host name when it is the default.
 */
const PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
export const INSTANCE_RULE = "letters, digits, '.', '_', '-', not starting with '.', at most 64 characters";

export function isInstanceName(name: string): boolean {
  return PATTERN.test(name);
}

/** The instance a backend config names (loadConfig copies it there), else the host name. */
export function instanceOf(config: { instance?: string }): string {
  return config.instance ?? hostname();
}
