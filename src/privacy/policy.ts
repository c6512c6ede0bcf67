/**
 * A flavor's privacy and bot rules (`flavors[].privacy`, `flavors[].bots`),
 * applied to one hit before any backend sees it: whether it is recorded, and
 * the server-side facts its Line gets (the `enrich` fields, with the IP as
 * `privacy.ip` says, the visitor id, the bot tag, the privacy action). A raw
 * IP therefore never reaches a file, Kafka, the spool or a log unless
 * `privacy.ip` is "full".
 *
 * Order: a prefetch is no hit (with `bots` set); then the strictest of the
 * GPC and DNT actions the flavor asks for (drop > anonymize > ignore); then
 * bots.
 */
import type { Enrich } from '../flavor.js';
import { isoTime } from '../day.js';
import { isBot, isPrefetch } from './bots.js';
import type { BotsConfig, PrivacyConfig, SignalAction } from './config.js';
import { maskIp } from './ip.js';
import type { Salts } from './salts.js';
import { DayHasher, ipText } from './visitor.js';

/** The request headers the rules read (lower case, as uWS wants them). */
export interface HitHeaders {
  userAgent: string;
  referer: string;
  secGpc: string;
  dnt: string;
  secPurpose: string;
  purpose: string;
  xPurpose: string;
  xMoz: string;
}

/** Why a hit is answered but not recorded. */
export type Skip = 'prefetch' | 'bot' | 'gpc' | 'dnt';

/**
 * `signal` (`${signal}/${action}`) and `bot` (the action) are what the hit
 * counts as, once it is answered as received (PrivacyState.count): a hit
 * refused for its query or body is counted as refused only.
 */
export type Verdict =
  | { skip: Skip; pairs?: undefined; strip?: undefined; signal: string | null; bot: string | null }
  | { skip: null; pairs: string[]; strip: ReadonlySet<string> | null; signal: string | null; bot: string | null };

/** What the rules count, by flavor: main's metrics read it. */
export interface PrivacyCounters {
  /** `${signal}/${action}` → hits, signal gpc or dnt, action anonymize or drop. */
  readonly signals: Map<string, number>;
  /** bots seen, by the action taken (keep, tag, drop). */
  readonly bots: Map<string, number>;
  prefetch: number;
}

export interface FlavorRules {
  readonly enrich: Enrich | null;
  readonly privacy: PrivacyConfig | null;
  readonly bots: BotsConfig | null;
  /** `privacy.identifiers` as a set, made once with the flavor. */
  readonly identifiers: ReadonlySet<string>;
}

/** Where salts and counters live: one per process, shared by every flavor table a reload makes. */
export class PrivacyState {
  private readonly counters = new Map<string, PrivacyCounters>();
  private readonly hashers = new Map<string, DayHasher>();

  constructor(readonly salts: Salts | null) {}

  countersOf(flavor: string): PrivacyCounters {
    let c = this.counters.get(flavor);
    if (c === undefined) {
      c = { signals: new Map(), bots: new Map(), prefetch: 0 };
      this.counters.set(flavor, c);
    }
    return c;
  }

  /** Count a hit answered as received (recorded, or dropped by a rule): once per request. */
  count(flavor: string, v: Verdict): void {
    if (v.skip !== 'prefetch' && v.signal === null && v.bot === null) return;
    const c = this.countersOf(flavor);
    if (v.skip === 'prefetch') c.prefetch++;
    if (v.signal !== null) add(c.signals, v.signal);
    if (v.bot !== null) add(c.bots, v.bot);
  }

  all(): ReadonlyMap<string, PrivacyCounters> {
    return this.counters;
  }

  hasher(flavor: string): DayHasher {
    let h = this.hashers.get(flavor);
    if (h === undefined) {
      h = new DayHasher();
      this.hashers.set(flavor, h);
    }
    return h;
  }
}

const STRICTNESS: Record<SignalAction, number> = { ignore: 0, anonymize: 1, drop: 2 };

function add(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * The verdict for one hit of flavor `name` at `time` (its `day`), from its
 * headers and client IP (canonical form).
 */
export function judge(
  name: string, timeZone: string, day: string, rules: FlavorRules, state: PrivacyState,
  h: HitHeaders, ip: string, time: number,
): Verdict {
  const { privacy, bots, enrich } = rules;
  if (bots !== null && isPrefetch(h.secPurpose, h.purpose, h.xPurpose, h.xMoz)) {
    return { skip: 'prefetch', signal: null, bot: null };
  }
  let action: SignalAction = 'ignore';
  let signal: 'gpc' | 'dnt' | null = null;
  if (privacy !== null) {
    if (privacy.gpc !== 'ignore' && h.secGpc.trim() === '1') { action = privacy.gpc; signal = 'gpc'; }
    if (privacy.dnt !== 'ignore' && h.dnt.trim() === '1' && STRICTNESS[privacy.dnt] > STRICTNESS[action]) { action = privacy.dnt; signal = 'dnt'; }
  }
  const counted = signal === null ? null : `${signal}/${action}`;
  if (signal !== null && action === 'drop') return { skip: signal, signal: counted, bot: null };
  let bot = false;
  if (bots !== null) {
    bot = h.userAgent === '' ? bots.emptyUserAgent === 'bot' : isBot(h.userAgent);
    if (bot && bots.action === 'drop') return { skip: 'bot', signal: counted, bot: 'drop' };
  }
  const anonymize = action === 'anonymize';
  const pairs: string[] = [];
  if (enrich !== null) {
    if (enrich.time !== undefined) pairs.push(enrich.time, isoTime(time, timeZone));
    if (enrich.ip !== undefined && !anonymize) {
      const written = writtenIp(name, day, privacy, state, ip);
      if (written !== null) pairs.push(enrich.ip, written);
    }
    if (enrich.userAgent !== undefined && !anonymize) pairs.push(enrich.userAgent, h.userAgent);
    if (enrich.referer !== undefined) pairs.push(enrich.referer, h.referer);
  }
  if (privacy !== null && state.salts !== null) {
    if (privacy.visitorId !== undefined && !anonymize) {
      pairs.push(privacy.visitorId, state.hasher(name).visitor(day, state.salts.salt(name, day), ip, h.userAgent, name));
    }
    if (privacy.field !== undefined && signal !== null) pairs.push(privacy.field, action);
  }
  if (bots !== null && bots.action === 'tag' && bot) pairs.push(bots.field, 'true');
  return { skip: null, pairs, strip: anonymize ? rules.identifiers : null, signal: counted, bot: bot ? bots!.action : null };
}

/** The `ip` enrichment as `privacy.ip` says; null: not written. */
function writtenIp(name: string, day: string, privacy: PrivacyConfig | null, state: PrivacyState, ip: string): string | null {
  if (privacy === null || privacy.ip === 'full') return ip;
  if (privacy.ip === 'masked') return maskIp(ip, privacy.maskBytes);
  if (privacy.ip === 'hashed' && state.salts !== null) return state.hasher(`${name}\0ip`).hash(day, state.salts.salt(name, day), ipText(ip));
  return null;
}
