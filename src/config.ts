import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { checkTimeZone } from './day.js';
import { hostName, makeFlavor, type Enrich, type Flavor } from './flavor.js';
import { splitHostPort } from './http/listen.js';

export interface FileConfig {
  enabled: boolean;
  dir: string;
  queueCapacity: number;
  retryMs: number;
  idleCloseMs: number;
}

export interface KafkaConfig {
  enabled: boolean;
  queueCapacity: number;
  key: string | null;
  flushTimeoutMs: number;
  rdkafka: Record<string, string | number | boolean>;
}

export interface Limits {
  maxQueryBytes: number;
  maxBodyBytes: number;
  maxParams: number;
  maxDepth: number;
}

/** The config file as config.schema.json describes it, defaults applied. */
export interface ConfigFile {
  listen: string;
  stats: { listen: string };
  log: { level: string };
  limits: Limits;
  shutdown: { drainTimeoutMs: number; graceMs: number };
  trustedProxies: string[];
  flavors: { name: string; hosts: string[]; timeZone: string; topic?: string; schema?: object; enrich?: Enrich }[];
  backends: { file: FileConfig; kafka: KafkaConfig };
}

export interface Config extends Omit<ConfigFile, 'flavors'> {
  flavors: Flavor[];
}

/** A config that cannot be used; `errors` are "path: reason" lines. */
export class ConfigError extends Error {
  constructor(readonly file: string, readonly errors: string[]) {
    super(`${file}: ${errors.join('; ')}`);
  }
}

const schemaPath = new URL('../config.schema.json', import.meta.url);

/** Read, validate and resolve a config file; throws ConfigError listing every problem. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [(err as Error).message]);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`not JSON: ${(err as Error).message}`]);
  }
  return resolveConfig(file, data);
}

function resolveConfig(file: string, data: unknown): Config {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true });
  const validate = ajv.compile<ConfigFile>(JSON.parse(readFileSync(schemaPath, 'utf8')));
  if (!validate(data)) throw new ConfigError(file, validate.errors!.map(describe));

  const errors: string[] = [];
  for (const [at, address] of [['/listen', data.listen], ['/stats/listen', data.stats.listen]] as const) {
    if (splitHostPort(address).port > 65535) errors.push(`${at}: port must be at most 65535`);
  }
  const { kafka } = data.backends;
  if (kafka.enabled && kafka.flushTimeoutMs >= data.shutdown.drainTimeoutMs) {
    errors.push(`/backends/kafka/flushTimeoutMs: must be below /shutdown/drainTimeoutMs (${data.shutdown.drainTimeoutMs})`);
  }
  const hostOwner = new Map<string, string>();
  const names = new Set<string>();
  const schemas = new Ajv({ allErrors: true, strict: false });
  const flavors = data.flavors.map((f, i) => {
    const at = `/flavors/${i}`;
    if (names.has(f.name)) errors.push(`${at}/name: duplicate flavor name "${f.name}"`);
    names.add(f.name);
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
        validate = schemas.compile(f.schema);
      } catch (err) {
        errors.push(`${at}/schema: ${(err as Error).message}`);
      }
    }
    const { schema: _, ...rest } = f;
    return makeFlavor({ ...rest, topic: f.topic ?? f.name }, validate);
  });
  if (errors.length > 0) throw new ConfigError(file, errors);
  return { ...data, flavors };
}

function describe(e: ErrorObject): string {
  const at = e.instancePath === '' ? '/' : e.instancePath;
  if (e.keyword === 'additionalProperties') return `${at}: unknown key "${e.params.additionalProperty}"`;
  if (e.keyword === 'enum') return `${at}: ${e.message} (${(e.params.allowedValues as unknown[]).join(', ')})`;
  return `${at}: ${e.message}`;
}
