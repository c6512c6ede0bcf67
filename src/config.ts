import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { INSTANCE_RULE, isInstanceName } from './instance.js';
import { DEFAULT_NAME, templateProblem } from './file/paths.js';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { checkTimeZone } from './day.js';
import { carbonNode } from './stats/carbon.js';
import { hostName, makeFlavor, type Enrich, type Flavor } from './flavor.js';
import type { BotsConfig, PrivacyConfig } from './privacy/config.js';
import type { DedupConfig } from './dedup/config.js';
import { canonicalIp, splitHostPort } from './net/address.js';

export interface FileConfig {
  enabled: boolean;
  dir: string;
  /** The day file's name template (file/paths.ts); absent (a test's own config): `{flavor}-{day}.log`. */
  name?: string;
  queueCapacity: number;
  /** Bytes of Lines the queue may hold (queued plus held by writers). */
  queueBytes: number;
  retryMs: number;
  idleCloseMs: number;
  /** Compress sealed days: `none` or `gzip` (Node 20's zlib has no zstd). */
  compress: 'none' | 'gzip';
  /** Remove sealed days older than this many days; null keeps them forever. */
  retainDays: number | null;
  /** The top-level `instance`, copied here by loadConfig; absent (a test's own config): the host name. */
  instance?: string;
}

export interface KafkaSpoolConfig {
  enabled: boolean;
  dir: string;
  segmentBytes: number;
  fsyncMs: number;
  maxBytes: number;
  minFreeBytes: number;
}

export interface KafkaConfig {
  enabled: boolean;
  queueCapacity: number;
  queueBytes: number;
  key: string | null;
  flushTimeoutMs: number;
  rdkafka: Record<string, string | number | boolean>;
  /** Absent: no spool (outages are held in RAM only). */
  spool?: KafkaSpoolConfig;
  /** The top-level `instance`, copied here by loadConfig; absent (a test's own config): the host name. */
  instance?: string;
}

export interface Limits {
  maxQueryBytes: number;
  maxBodyBytes: number;
  /** Body bytes all requests together may hold between reads; over it: 503 busy and close. */
  maxBodyBytesInFlight: number;
  maxParams: number;
  maxDepth: number;
  maxBulkRequests: number;
  maxBulkBytes: number;
  /** Per serving thread: bytes relayed to the main thread and not yet taken; over it 503 relay_full. */
  maxRelayBytes: number;
}

/** The config file as config.schema.json describes it, defaults applied. */
export interface ConfigFile {
  /** This instance's name; absent: the host name (resolved by loadConfig). */
  instance?: string;
  listen: string;
  /** Serving threads; "auto": os.availableParallelism(). */
  threads: 'auto' | number;
  stats: { listen: string; graphite?: { host: string; port: number; prefix: string; intervalMs: number } };
  log: { level: string };
  /** Loss windows (losses.jsonl) and replay progress. */
  stateDir: string;
  limits: Limits;
  shutdown: { drainTimeoutMs: number; graceMs: number };
  trustedProxies: string[];
  flavors: { name: string; hosts: string[]; timeZone: string; topic?: string; schema?: object; enrich?: Enrich; bulk?: boolean; cors?: { origins?: string[] }; privacy?: PrivacyConfig; bots?: BotsConfig; dedup?: DedupConfig }[];
  backends: { file: FileConfig; kafka: KafkaConfig };
}

export interface Config extends Omit<ConfigFile, 'flavors' | 'instance'> {
  instance: string;
  flavors: Flavor[];
}

/** A config that cannot be used; `errors` are "path: reason" lines. */
export class ConfigError extends Error {
  constructor(readonly file: string, readonly errors: string[]) {
    super(`${file}: ${errors.join('; ')}`);
  }
}

const schemaPath = new URL('../config.schema.json', import.meta.url);

/** How config.schema.json is compiled; scripts/config-validator.mjs uses the same. */
export const configAjvOptions = { allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true } as const;

// ajv is CommonJS: required when needed, not imported, so that a daemon whose
// validator was generated at build time never loads ajv's compiler (its cost
// in memory is in BENCHMARKS.md).
const require = createRequire(import.meta.url);
const ajvClass = (): typeof import('ajv').Ajv => (require('ajv') as typeof import('ajv')).Ajv;

/**
 * The validator of config.schema.json: the code `npm run build` generated
 * (ajv standalone, dist/config-validator.cjs) if it was made from this very
 * schema text, else (running from src/, or a stale build) compiled by ajv.
 */
function configValidator(): ValidateFunction<ConfigFile> {
  const schemaText = readFileSync(schemaPath, 'utf8');
  try {
    const generated = require('./config-validator.cjs') as ValidateFunction<ConfigFile> & { schemaText?: string };
    if (generated.schemaText === schemaText) return generated;
  } catch {
    // not generated: compile below
  }
  const Ajv = ajvClass();
  return new Ajv(configAjvOptions).compile<ConfigFile>(JSON.parse(schemaText));
}

/** Read, validate and resolve a config file; throws ConfigError listing every problem. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [(err as Error).message]);
  }
  return configFromText(file, text);
}

/** The config in `text` (read from `file`): what a serving thread compiles of the text the main thread checked. */
export function configFromText(file: string, text: string): Config {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`not JSON: ${(err as Error).message}`]);
  }
  return resolveConfig(file, data);
}

function resolveConfig(file: string, data: unknown): Config {
  const validate = configValidator();
  if (!validate(data)) throw new ConfigError(file, validate.errors!.map(describe));

  const errors: string[] = [];
  const instance = data.instance ?? hostname();
  if (!isInstanceName(instance)) {
    errors.push(`/instance: the host name "${instance}" is not a safe instance name: set instance (${INSTANCE_RULE})`);
  }
  for (const [at, address] of [['/listen', data.listen], ['/stats/listen', data.stats.listen]] as const) {
    if (splitHostPort(address).port > 65535) errors.push(`${at}: port must be at most 65535`);
  }
  const nameProblem = templateProblem(data.backends.file.name ?? DEFAULT_NAME);
  if (nameProblem !== null) errors.push(`/backends/file/name: "${data.backends.file.name}" ${nameProblem}`);
  const { kafka } = data.backends;
  if (kafka.enabled && kafka.flushTimeoutMs >= data.shutdown.drainTimeoutMs) {
    errors.push(`/backends/kafka/flushTimeoutMs: must be below /shutdown/drainTimeoutMs (${data.shutdown.drainTimeoutMs})`);
  }
  if (data.limits.maxBodyBytesInFlight < data.limits.maxBodyBytes) {
    errors.push(`/limits/maxBodyBytesInFlight: must be at least /limits/maxBodyBytes (${data.limits.maxBodyBytes})`);
  }
  if (data.limits.maxRelayBytes < 2 * data.limits.maxBulkBytes) {
    errors.push(`/limits/maxRelayBytes: must be at least 2 × /limits/maxBulkBytes (${2 * data.limits.maxBulkBytes})`);
  }
  const hostOwner = new Map<string, string>();
  const names = new Set<string>();
  const nodes = new Map<string, string>();
  // Flavors' own schemas are compiled at start: only then is ajv loaded.
  let schemas: import('ajv').Ajv | null = null;
  const flavors = data.flavors.map((f, i) => {
    const at = `/flavors/${i}`;
    if (names.has(f.name)) errors.push(`${at}/name: duplicate flavor name "${f.name}"`);
    names.add(f.name);
    // Graphite paths are /stats' keys made nodes (stats/carbon.ts): two names, one node, one series.
    const node = carbonNode(f.name);
    if (data.stats.graphite !== undefined && nodes.has(node) && nodes.get(node) !== f.name) {
      errors.push(`${at}/name: "${f.name}" and "${nodes.get(node)}" are one Graphite node (${node}) with stats.graphite on: rename one`);
    }
    nodes.set(node, f.name);
    f.hosts.forEach((h, j) => {
      const owner = hostOwner.get(hostName(h));
      if (owner !== undefined) errors.push(`${at}/hosts/${j}: host "${h}" already belongs to flavor "${owner}"`);
      hostOwner.set(hostName(h), f.name);
    });
    try {
      checkTimeZone(f.timeZone);
    } catch {
      errors.push(`${at}/timeZone: unknown time zone "${f.timeZone}"`);
    }
    let validate: Flavor['validate'] = null;
    if (f.schema !== undefined) {
      try {
        schemas ??= new (ajvClass())({ allErrors: true, strict: false });
        validate = schemas.compile(f.schema);
      } catch (err) {
        errors.push(`${at}/schema: ${(err as Error).message}`);
      }
    }
    const { schema: _, ...rest } = f;
    return makeFlavor({ ...rest, topic: f.topic ?? f.name }, validate);
  });
  // Canonical, as the peers they are compared with (net/address.ts).
  const trustedProxies = data.trustedProxies.map((p, i) => {
    const ip = canonicalIp(p);
    if (ip === null) errors.push(`/trustedProxies/${i}: "${p}" is not an IP address`);
    return ip ?? p;
  });
  if (errors.length > 0) throw new ConfigError(file, errors);
  const backends = { file: { ...data.backends.file, instance }, kafka: { ...data.backends.kafka, instance } };
  return { ...data, instance, trustedProxies, flavors, backends };
}

function describe(e: ErrorObject): string {
  const at = e.instancePath === '' ? '/' : e.instancePath;
  if (e.keyword === 'additionalProperties') return `${at}: unknown key "${e.params.additionalProperty}"`;
  if (e.keyword === 'enum') return `${at}: ${e.message} (${(e.params.allowedValues as unknown[]).join(', ')})`;
  return `${at}: ${e.message}`;
}
