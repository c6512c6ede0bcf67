import type { Config, Limits } from '../config.js';
import { flavorLookup, type Flavor } from '../flavor.js';
import type { Cors } from './cors.js';

/**
 * Everything the public listener reads from the config, in one object the
 * config reload swaps whole (`Http.configure`): a request sees either the old
 * settings or the new ones, never half of each.
 */
export interface HttpSettings {
  readonly lookup: (host: string) => Flavor | undefined;
  readonly limits: Limits;
  readonly maxQueryBytes: number;
  readonly maxBodyBytes: number;
  readonly trusted: ReadonlySet<string>;
  /** Built per flavor object, so it is rebuilt with them. */
  readonly cors: Cors;
}

export function httpSettings(config: Config, cors: Cors): HttpSettings {
  return {
    lookup: flavorLookup(config.flavors),
    limits: config.limits,
    maxQueryBytes: config.limits.maxQueryBytes,
    maxBodyBytes: config.limits.maxBodyBytes,
    trusted: new Set(config.trustedProxies),
    cors,
  };
}
