// Config reload (SIGHUP, `systemctl reload`): read the config file again with
// the start-up loader, and apply what can change without a restart. A config
// that fails to load changes nothing: the running one stays, and the errors
// are logged.
import { isDeepStrictEqual } from 'node:util';
import { readFileSync } from 'node:fs';
import { ConfigError, configFromText, type Config } from './config.js';
import type { Flavor } from './flavor.js';
import { notify } from './http/activation.js';
import type { Serving } from './threads/serving.js';
import { setLogLevel, type Logger } from './log.js';

/**
 * The config as start-up, `--check` and reload judge it: the schema and our
 * own rules, then librdkafka's verdict on its settings when Kafka is on
 * (only then: loading node-rdkafka starts its threads). Throws ConfigError.
 */
export async function loadCheckedConfig(file: string): Promise<Config> {
  return (await readCheckedConfig(file)).config;
}

/** loadCheckedConfig, with the text it judged: what the serving threads compile (threads/). */
export async function readCheckedConfig(file: string): Promise<{ config: Config; text: string }> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [(err as Error).message]);
  }
  const config = configFromText(file, text);
  if (config.backends.kafka.enabled) {
    const { rdkafkaConfigError } = await import('./kafka/settings.js');
    const error = rdkafkaConfigError(config.backends.kafka.rdkafka);
    if (error !== null) throw new ConfigError(file, [`/backends/kafka/rdkafka: ${error}`]);
  }
  return { config, text };
}

/**
 * Top-level keys a reload applies. Every other key (listen, stats.listen,
 * backends, and any key added later until it is taught to reload) is read
 * once at start-up: a change to it is logged as needing a restart.
 */
const LIVE = new Set(['flavors', 'limits', 'trustedProxies', 'log', 'shutdown']);

/** The changes in `next` that only a restart applies, as "key" or "key.sub" paths. */
export function needsRestart(running: Config, next: Config): string[] {
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]);
  const out: string[] = [];
  for (const key of keys) {
    if (LIVE.has(key)) continue;
    const a = (running as unknown as Record<string, unknown>)[key];
    const b = (next as unknown as Record<string, unknown>)[key];
    if (isDeepStrictEqual(a, b)) continue;
    // Name the sub-key (backends.kafka, stats.listen) when both are objects.
    if (isObject(a) && isObject(b)) {
      for (const sub of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (!isDeepStrictEqual(a[sub], b[sub])) out.push(`${key}.${sub}`);
      }
    } else {
      out.push(key);
    }
  }
  // uWS sized its request-head limit from maxQueryBytes when it loaded: a
  // lower limit applies at once, a higher one only up to that size.
  if (next.limits.maxQueryBytes > running.limits.maxQueryBytes) out.push('limits.maxQueryBytes (raised)');
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The new flavor table, keeping the running Flavor object wherever a flavor
 * did not change: backends key their per-flavor state (open day files) by
 * it, and an unchanged flavor keeps that state across reloads.
 */
export function keepUnchanged(running: readonly Flavor[], next: readonly Flavor[]): Flavor[] {
  const byName = new Map(running.map((f) => [f.name, f]));
  return next.map((f) => {
    const old = byName.get(f.name);
    return old !== undefined && isDeepStrictEqual(flavorFacts(old), flavorFacts(f)) ? old : f;
  });
}

/** A flavor's configuration, comparable: its fields without functions, its schema as written. */
function flavorFacts(f: Flavor): unknown {
  const { day: _, validate, ...rest } = f;
  return { ...rest, schema: (validate as { schema?: unknown } | null)?.schema ?? null };
}

export interface Reloader {
  /** The config in force (start-up's, then the last one applied). */
  current(): Config;
  /** Re-read the config file and apply it; resolves when done (never rejects). */
  reload(): Promise<void>;
}

/**
 * Reloads of `file` for a daemon that started with `started`. Reloads run one
 * at a time; signals that arrive during one are served by one more reload.
 * Under systemd (Type=notify-reload) each is bracketed by RELOADING=1 and
 * READY=1, so `systemctl reload` returns when the new config is in force.
 */
export function makeReloader(
  file: string, started: Config,
  parts: {
    serving: Pick<Serving, 'configure'>;
    log: Logger;
    /** What must know the new flavors before any thread serves them (the main thread's flavor table). */
    beforeThreads?: (next: Config) => void;
    /** Others that follow the flavor table (the loss tracker's time zones). */
    applied?: (next: Config) => void;
  },
): Reloader {
  let current = started;
  let running: Promise<void> | null = null;
  let again = false;

  async function once(): Promise<void> {
    notify(parts.log, `RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
    try {
      let next: Config;
      let text: string;
      try {
        ({ config: next, text } = await readCheckedConfig(file));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        parts.log.error({ file, errors: err.errors }, 'reload refused: the config has errors; the running config stays');
        return;
      }
      next = { ...next, flavors: keepUnchanged(current.flavors, next.flavors) };
      const restart = needsRestart(started, next);
      const changed = [...LIVE].filter((k) => !isDeepStrictEqual(
        (current as unknown as Record<string, unknown>)[k], (next as unknown as Record<string, unknown>)[k]));
      parts.beforeThreads?.(next);
      // Resolves when every serving thread has it: systemctl reload returns after that.
      await parts.serving.configure(text);
      parts.applied?.(next);
      parts.log.info({ file, changed, flavors: next.flavors.map((f) => f.name) }, 'config reloaded');
      if (restart.length > 0) {
        parts.log.warn({ file, keys: restart }, `config reloaded, but these changes need a restart: ${restart.join(', ')}`);
      }
      setLogLevel(parts.log, next.log.level);
      current = next;
    } catch (err) {
      parts.log.error({ file, err }, 'reload failed; the running config stays');
    } finally {
      notify(parts.log, 'READY=1');
    }
  }

  function reload(): Promise<void> {
    if (running !== null) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await once();
      } while (again);
      running = null;
    })();
    return running;
  }

  return { current: () => current, reload };
}
