import type { Config } from '../config.js';
import { flavorLookup, type Flavor } from '../flavor.js';
import type { QueryLimits } from '../query/index.js';

/**
 * Everything the public listener reads from the config, in one object the
 * config reload swaps whole (`Http.configure`): a request sees either the old
 * settings or the new ones, never half of each.
 */
export interface HttpSettings {
  readonly lookup: (host: string) => Flavor | undefined;
  readonly limits: QueryLimits;
  readonly maxQueryBytes: number;
  readonly maxBodyBytes: number;
  readonly trusted: ReadonlySet<string>;
}

export function httpSettings(config: Config): HttpSettings {
  return {
    lookup: flavorLookup(config.flavors),
    limits: config.limits,
    maxQueryBytes: config.limits.maxQueryBytes,
    maxBodyBytes: config.limits.maxBodyBytes,
    trusted: new Set(config.trustedProxies),
  };
}
