/**
 * A hit from its query (and body) to Lines in the relay: the flavor's rules
 * judge it (privacy/policy.ts), the converter makes its Values, the schema
 * checks them, and record() hands them to the sink with their dedup keys.
 * Called by the GET and POST routes while the request is valid.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { DedupHit, DedupKey, FlavorDedup } from '../dedup/key.js';
import type { Flavor } from '../flavor.js';
import { judge, type Verdict } from '../privacy/policy.js';
import { withoutMembers } from '../privacy/strip.js';
import { parseValues } from '../query/index.js';
import { clientIp } from './client-ip.js';
import { facts, type Facts } from './head.js';
import type { Refusal } from './post.js';
import type { RejectReason } from './reject.js';
import { converterFailed, type HttpState } from './state.js';

/** The query → Values JSON with the hit's server-side pairs, or the reason it is refused. */
export function values(s: HttpState, flavor: Flavor, query: string, verdict: Verdict | null): Buffer | RejectReason {
  const json = parseValues(query, s.settings.limits, verdict?.pairs);
  if ('reason' in json) {
    if (json.reason === 'internal') converterFailed(s, query, json.error);
    return json.reason;
  }
  return checked(flavor, json);
}

/** The flavor's JSON Schema, if it has one. */
export function checked(flavor: Flavor, json: Buffer): Buffer | RejectReason {
  if (flavor.validate !== null && !flavor.validate(JSON.parse(json.toString()))) return 'schema';
  return json;
}

/** One body's Values, schema-checked, as the Lines to record or the refusal. */
export function oneLine(flavor: Flavor, json: Buffer | RejectReason): Buffer[] | Refusal {
  if (typeof json === 'string') return { reason: json };
  const c = checked(flavor, json);
  return typeof c === 'string' ? { reason: c } : [c];
}

/**
 * The flavor's enrichment, privacy and bot rules for this hit (privacy/policy.ts), read
 * while the request is valid; null for a flavor with none of them (no header read).
 */
export function verdictOf(s: HttpState, flavor: Flavor, time: number, f: Facts | null): Verdict | null {
  if (f === null || (flavor.enrich === null && flavor.privacy === null && flavor.bots === null)) return null;
  return judge(flavor.name, flavor.timeZone, flavor.day(time), flavor, s.privacy, f, clientIp(f.peer, f.forwardedFor, s.settings.trusted), time);
}

/** The headers the flavor's rules and dedup key read, while the request is valid; null when none. */
export function factsOf(flavor: Flavor, d: FlavorDedup | null, res: HttpResponse, req: HttpRequest): Facts | null {
  if (flavor.enrich === null && flavor.privacy === null && flavor.bots === null && !(d?.spec.headers ?? false)) return null;
  return facts(res, req);
}

/** The hit's dedup key so far (dedup/), for a flavor with dedup on. */
export function dupOf(s: HttpState, d: FlavorDedup | null, f: Facts | null, query: string, post: boolean): DedupHit | null {
  if (d === null) return null;
  const ip = f === null || !d.spec.ip ? '' : clientIp(f.peer, f.forwardedFor, s.settings.trusted);
  return post ? s.dedup.post(d, ip, f?.userAgent ?? '', query) : s.dedup.get(d, ip, f?.userAgent ?? '', query);
}

/**
 * Hand the Lines of a hit the rules let through to the relay, each with
 * its dedup key (the main thread judges repeats: one store for all
 * threads). All or none: false when the relay cannot take them all now;
 * then they are refused, counted and told to the loss tracker.
 */
export function record(s: HttpState, flavor: Flavor, jsons: readonly Buffer[], time: number, verdict: Verdict | null, dup: DedupHit | null): boolean {
  if (verdict !== null && verdict.skip !== null) return true;
  const { sink } = s;
  const keys: (DedupKey | null)[] = [];
  const out: Buffer[] = [];
  let bytes = 0;
  for (const json of jsons) {
    let key: DedupKey | null = null;
    if (dup !== null) {
      key = { hi: 0, lo: 0 };
      dup.keyOf(json, key);
    }
    const line = verdict === null || verdict.strip === null ? json : withoutMembers(json, verdict.strip);
    keys.push(key);
    out.push(line);
    bytes += sink.size(flavor.name, line, key !== null);
  }
  if (!sink.fits(bytes)) {
    for (let i = 0; i < out.length; i++) sink.refuse(flavor.name, time);
    return false;
  }
  for (let i = 0; i < out.length; i++) sink.add(flavor.name, time, out[i]!, keys[i]!);
  return true;
}

/** record() for the one Line of a GET, without its arrays: the common hit. */
export function recordOne(s: HttpState, flavor: Flavor, json: Buffer, time: number, verdict: Verdict | null, dup: DedupHit | null): boolean {
  if (verdict !== null && verdict.skip !== null) return true;
  let key: DedupKey | null = null;
  if (dup !== null) {
    key = oneKey;
    dup.keyOf(json, key);
  }
  const line = verdict === null || verdict.strip === null ? json : withoutMembers(json, verdict.strip);
  const { sink } = s;
  if (!sink.fits(sink.size(flavor.name, line, key !== null))) {
    sink.refuse(flavor.name, time);
    return false;
  }
  sink.add(flavor.name, time, line, key);
  return true;
}
/** recordOne()'s key, reused: the sink copies its halves before recordOne returns. */
const oneKey: DedupKey = { hi: 0, lo: 0 };
