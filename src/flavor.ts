import { dayClock } from './day.js';
import type { BotsConfig, PrivacyConfig } from './privacy/config.js';
import type { DedupConfig } from './dedup/config.js';

/** Server-side facts a flavor may add to Values, each under the field name given. */
export interface Enrich {
  readonly time?: string;
  readonly ip?: string;
  readonly userAgent?: string;
  readonly referer?: string;
}

/** One site: where its beacons come from and where its Lines go. */
export interface Flavor {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly timeZone: string;
  readonly topic: string;
  readonly enrich: Enrich | null;
  /** Values validator compiled from the flavor's JSON Schema, if it has one. */
  readonly validate: ((values: unknown) => boolean) | null;
  /** The flavor's calendar day (YYYY-MM-DD) at a time, ms since the epoch. */
  readonly day: (time: number) => string;
  /** Read Matomo bulk bodies ({"requests":[...]}) as one hit per entry. */
  readonly bulk: boolean;
  /** Origins whose pages may read /track answers (CORS), exact `scheme://host[:port]`. */
  readonly corsOrigins: readonly string[];
  /** How its Lines treat personal data (privacy/policy.ts); null: as received. */
  readonly privacy: PrivacyConfig | null;
  /** Crawlers and prefetches; null: recorded like any hit. */
  readonly bots: BotsConfig | null;
  /** `privacy.identifiers` as a set (empty without privacy). */
  readonly identifiers: ReadonlySet<string>;
  /** Hits whose key was seen within a window are answered and not recorded (dedup/); null: off. */
  readonly dedup: DedupConfig | null;
}

export type FlavorConfig = Omit<Flavor, 'day' | 'validate' | 'enrich' | 'bulk' | 'corsOrigins' | 'privacy' | 'bots' | 'identifiers' | 'dedup'>
  & { enrich?: Enrich; bulk?: boolean; cors?: { origins?: readonly string[] }; privacy?: PrivacyConfig; bots?: BotsConfig; dedup?: DedupConfig };

export function makeFlavor(config: FlavorConfig, validate: Flavor['validate']): Flavor {
  const { cors, ...rest } = config;
  return {
    ...rest,
    enrich: config.enrich ?? null,
    validate,
    day: dayClock(config.timeZone),
    bulk: config.bulk ?? true,
    corsOrigins: cors?.origins ?? defaultOrigins(config.hosts),
    privacy: config.privacy ?? null,
    bots: config.bots ?? null,
    identifiers: new Set(config.privacy?.identifiers ?? []),
    dedup: config.dedup ?? null,
  };
}

/** A flavor's own hosts, over http and https: what its pages' Origin header says. */
function defaultOrigins(hosts: readonly string[]): string[] {
  return hosts.flatMap((h) => [`http://${h.toLowerCase()}`, `https://${h.toLowerCase()}`]);
}

/** The Host header's name part, lower-cased: "WWW.Example.gr:8080" → "www.example.gr". */
export function hostName(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.indexOf(':');
  return (end > 0 ? host.slice(0, end) : host).toLowerCase();
}

/** Host header values remembered (a few per flavor are the real ones). */
const SEEN_HOSTS = 1024;
/** The longest Host worth remembering: a DNS name (253) and `:port`. Longer ones are looked up each time. */
const SEEN_HOST_LENGTH = 260;

/**
 * Host header → Flavor. Exact header values seen before are answered from a
 * map without normalising. The map holds only values that named a flavor and
 * are no longer than a real host name, at most SEEN_HOSTS of them: Host
 * headers from scanners (unknown, or a known name padded with a long port)
 * cannot grow it past about 1024 × 260 characters. `seen` is given by tests.
 */
export function flavorLookup(flavors: readonly Flavor[], seen = new Map<string, Flavor>()): (host: string) => Flavor | undefined {
  const byName = new Map<string, Flavor>();
  for (const f of flavors) for (const h of f.hosts) byName.set(hostName(h), f);
  return (host) => {
    let f = seen.get(host);
    if (f !== undefined) return f;
    f = byName.get(hostName(host));
    if (f !== undefined && host.length <= SEEN_HOST_LENGTH && seen.size < SEEN_HOSTS) seen.set(host, f);
    return f;
  };
}
