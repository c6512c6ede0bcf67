/**
 * POST /track bodies → Values, the way Rails records them: `params` is
 * `Rack::Request#GET.merge(POST)`, the URL query and the form body each
 * parsed with parse_nested_query, then a shallow Hash#merge (a body key
 * replaces the query's value in the query key's place; new keys follow in
 * body order). Matomo's default beacon is `POST /track?<query>` with an empty
 * body: that records the query.
 */
import type { RejectReason } from './reject.js';
import { parseValues, type QueryLimits } from '../query/index.js';
import { mergeParams, parseParams, serializeParams, type Params } from '../query/params-shim.js';

/** A body's Values are refused for `reason`; `at` names the bulk entry. */
export interface Refusal {
  readonly reason: RejectReason;
  readonly at?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Query and form body → the Values JSON, or the reason Rack would refuse it. */
export function formValues(query: string, raw: Buffer, limits: QueryLimits, extra: string[] | undefined): Buffer | RejectReason {
  const body = rackForm(raw);
  // The common shapes keep parseValues' single pass: only one part present.
  if (body.length === 0) return unwrap(parseValues(query, limits, extra));
  if (query === '') {
    let text: string | undefined;
    try {
      text = utf8.decode(body);
    } catch {
      // Raw invalid UTF-8: Rack parses the bytes; parseParams follows it.
    }
    if (text !== undefined) return unwrap(parseValues(text, limits, extra));
    const post = parseParams(body, limits);
    return 'reason' in post ? post.reason : unwrap(serializeParams(post, extra));
  }
  const post = parseParams(body, limits);
  if ('reason' in post) return post.reason;
  return queryMerged(query, post, limits, extra);
}

/** GET.merge(post) serialized: the query's params first, the body's over them. */
export function queryMerged(query: string, post: Params, limits: QueryLimits, extra: string[] | undefined): Buffer | RejectReason {
  if (query === '') return unwrap(serializeParams(post, extra));
  const get = parseParams(query, limits);
  if ('reason' in get) return get.reason;
  return unwrap(serializeParams(mergeParams(get, post), extra));
}

/**
 * A form body as Rack 2.2's Request#POST reads it: one trailing NUL dropped
 * ("Safari Ajax postings"), and split on `&` only, never `;` (parse_query(vars,
 * '&')): a `;` becomes `%3B`, which the query parser decodes back to `;`.
 */
function rackForm(body: Buffer): Buffer {
  const b = body.length > 0 && body[body.length - 1] === 0 ? body.subarray(0, body.length - 1) : body;
  if (b.indexOf(0x3b) < 0) return b;
  return Buffer.from(b.toString('latin1').replaceAll(';', '%3B'), 'latin1');
}

function unwrap(r: Buffer | { readonly reason: RejectReason }): Buffer | RejectReason {
  return 'reason' in r ? r.reason : r;
}
