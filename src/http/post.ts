/**
 * POST /track bodies → Values, the way Rails records them: `params` is
 * `Rack::Request#GET.merge(POST)`, the URL query and the form body each
 * parsed with parse_nested_query, then a shallow Hash#merge (a body key
 * replaces the query's value in the query key's place; new keys follow in
 * body order). Matomo's default beacon is `POST /track?<query>` with an empty
 * body: that records the query.
 */
import type { RejectReason } from './reject.js';
import { mergeParams, parseParams, parseValues, serializeParams, type Params, type QueryLimits } from '../query/index.js';

/** A body's Values are refused for `reason`; `at` names the bulk entry. */
export interface Refusal {
  readonly reason: RejectReason;
  readonly at?: number;
}

/** Query and form body → the Values JSON, or the reason Rack would refuse it. */
export function formValues(query: string, raw: Buffer, limits: QueryLimits, extra: string[] | undefined): Buffer | RejectReason {
  // Matomo's default beacon (the query, an empty body) keeps parseValues' single pass.
  if (raw.length === 0) return unwrap(parseValues(query, limits, extra));
  const post = parseParams(raw, limits);
  if ('reason' in post) return unwrap(post);
  return queryMerged(query, post, limits, extra);
}

/** GET.merge(post) serialized: the query's params first, the body's over them. */
export function queryMerged(query: string, post: Params, limits: QueryLimits, extra: string[] | undefined): Buffer | RejectReason {
  if (query === '') return unwrap(serializeParams(post, extra));
  const get = parseParams(query, limits);
  if ('reason' in get) return unwrap(get);
  return unwrap(serializeParams(mergeParams(get, post), extra));
}

/** A converter bug (`internal`) is thrown on, for the caller to log with its stack and answer 500. */
function unwrap(r: Buffer | { readonly reason: RejectReason; readonly error?: unknown }): Buffer | RejectReason {
  if (!('reason' in r)) return r;
  if (r.reason === 'internal') throw r.error;
  return r.reason;
}
