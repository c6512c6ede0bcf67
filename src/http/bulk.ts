/**
 * Matomo's bulk format: a POST body `{"requests":["?a=1&…","?b=2&…"]}` (sent
 * labelled as a form) carries several hits; Matomo's own server records one
 * hit per entry, and so do we: each entry is parsed like a GET query (a
 * leading `?` dropped), in order. All or nothing: one bad entry refuses the
 * whole body, so a client's retry cannot duplicate the good ones. Bounded
 * in what it writes, not only in entries: the entries' Lines together may be
 * at most limits.maxBulkBytes (an entry of a few bytes may carry a 16 KB
 * User-Agent through enrichment), else the body is `bulk_too_large` at the
 * first entry past it.
 */
import type { Refusal } from './post.js';
import type { RejectReason } from './reject.js';
import { parseValues, type QueryLimits } from '../query/index.js';

export interface BulkLimits extends QueryLimits {
  readonly maxQueryBytes: number;
  readonly maxBulkRequests: number;
  /** Most bytes of Lines one body may write: enrichment repeats the request's headers in every entry. */
  readonly maxBulkBytes: number;
}

/**
 * The body's entries when it is a bulk body (a JSON object with a `requests`
 * array), else null. Only a body starting with `{` is tried: a form body
 * never parses as JSON, and this keeps JSON.parse off ordinary beacons.
 */
export function bulkEntries(body: Buffer): unknown[] | null {
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  if (body[i] !== 0x7b) return null;
  let data: unknown;
  try {
    data = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof data !== 'object' || data === null) return null;
  const requests = (data as { requests?: unknown }).requests;
  return Array.isArray(requests) ? requests : null;
}

/** Each entry → its Values JSON (`check` adds the flavor's schema), or the first refusal. */
export function bulkValues(
  entries: unknown[],
  limits: BulkLimits,
  extra: string[] | undefined,
  check: (json: Buffer) => Buffer | RejectReason,
): Buffer[] | Refusal {
  if (entries.length > limits.maxBulkRequests) return { reason: 'bulk_too_large' };
  const out: Buffer[] = [];
  let bytes = 0;
  for (let at = 0; at < entries.length; at++) {
    const entry = entries[at];
    if (typeof entry !== 'string') return { reason: 'bulk_entry', at };
    const query = entry.startsWith('?') ? entry.slice(1) : entry;
    if (Buffer.byteLength(query) > limits.maxQueryBytes) return { reason: 'too_long', at };
    const json = parseValues(query, limits, extra);
    if ('reason' in json) {
      if (json.reason === 'internal') throw json.error; // a converter bug: the caller logs it and answers 500
      return { reason: json.reason, at };
    }
    const checked = check(json);
    if (typeof checked === 'string') return { reason: checked, at };
    bytes += checked.length;
    if (bytes > limits.maxBulkBytes) return { reason: 'bulk_too_large', at };
    // parseValues' results stay valid across calls (views of a slab that is never rewritten).
    out.push(checked);
  }
  return out;
}
