/**
 * Rails' `params` for a POST, in parts: each part of the request (URL query,
 * form body, multipart text fields) parsed as Rack 2.2 does, then merged as
 * Rack::Request#params merges them, then serialized as JSON.generate does. Not
 * the GET hot path (that is parseValues' fast path in index.ts), so it builds
 * Rack's hashes and copies freely.
 */
import { codePoints } from './bytes.js';
import { generate } from './json.js';
import {
  BYTESIZE_LIMIT, KEY_SPACE, KEY_SPACE_LIMIT, TOO_MANY_PARAMS, caught, type QueryLimits, type Rejection,
} from './limits.js';
import { RackHash, normalizeField, parseNested, type Val } from './rack.js';

/**
 * The params of one part of a request (its URL query, its form body, its
 * multipart fields) as Rack 2.2 builds them, not yet serialized; or the merge
 * of two parts. Opaque to callers: pass it to mergeParams and serializeParams.
 */
export interface Params {
  /** Rack's hash (insertion-ordered). */
  readonly hash: RackHash;
  /** Parameters counted for limits.maxParams: a query's or body's segments, or the fields. */
  readonly count: number;
  readonly maxParams: number;
  /** A limit the merged request exceeds: serializeParams answers it. */
  readonly rejection: Rejection | null;
}

/** `&` and `;` in a query; `&` only in a body, as Rack's parse_query(form_vars, '&') counts them. */
function separators(q: string, body: boolean): number {
  let seps = 0;
  for (let p = q.indexOf('&'); p >= 0; p = q.indexOf('&', p + 1)) seps++;
  if (!body) for (let p = q.indexOf(';'); p >= 0; p = q.indexOf(';', p + 1)) seps++;
  return seps;
}

/**
 * Rack 2.2's `parse_nested_query`, unserialized. A string is a URL query (what
 * Rack::Request#GET parses: separators `&` and `;`); a Uint8Array is a form body's raw
 * bytes (what Rack::Request#POST parses: `&` only, one trailing NUL dropped, and each raw
 * byte taken as the byte it is, exactly as if it were %-encoded: invalid UTF-8 is refused
 * only if it survives into the Values).
 */
export function parseParams(input: string | Uint8Array, limits: QueryLimits): Params | Rejection {
  try {
    let q: string, body: boolean, size: number;
    if (typeof input === 'string') {
      q = input;
      body = false;
      size = q.length > BYTESIZE_LIMIT / 3 ? Buffer.byteLength(q, 'utf8') : 0;
    } else {
      let len = input.length;
      if (len > 0 && input[len - 1] === 0) len--;   // "Fix for Safari Ajax postings that always append \0"
      q = Buffer.from(input.buffer, input.byteOffset, len).toString('latin1');
      body = true;
      size = len;
    }
    // QueryParser#check_query_string
    if (size > BYTESIZE_LIMIT) return TOO_MANY_PARAMS;
    const seps = q.length === 0 ? 0 : separators(q, body);
    if (seps >= limits.maxParams) return TOO_MANY_PARAMS;
    const hash = parseNested(q, limits.maxDepth, undefined, body);
    return { hash, count: q.length === 0 ? 0 : seps + 1, maxParams: limits.maxParams, rejection: null };
  } catch (e) {
    return caught(e);
  }
}

/** Rack::Utils.multipart_total_part_limit: Rack refuses the 4096th part. */
const MULTIPART_PART_LIMIT = 4096;

/**
 * Rack 2.2's multipart parser's params from the text fields of a
 * multipart/form-data body, in order: `normalize_params(params, name, value,
 * param_depth_limit)` per field, so bracketed names nest as in a query, but
 * names and values are taken as they are (no %- or `+`-decoding). More than
 * limits.maxParams fields, or as many as Rack's 4096-part limit, is
 * `too_many_params`. A lone surrogate (no UTF-8 form) counts as invalid UTF-8.
 */
export function paramsFromFields(fields: Iterable<readonly [name: string, value: string]>, limits: QueryLimits): Params | Rejection {
  try {
    const list = [...fields];
    if (list.length > limits.maxParams || list.length >= MULTIPART_PART_LIMIT) return TOO_MANY_PARAMS;
    const hash = new RackHash(true);
    // Rack names a part without a name after its content type: a text field's is text/plain
    for (const [name, value] of list) normalizeField(hash, name === '' ? 'text/plain[]' : name, value, limits.maxDepth);
    return { hash, count: list.length, maxParams: limits.maxParams, rejection: null };
  } catch (e) {
    return caught(e);
  }
}

/**
 * Rack::Request#params: `GET.merge(POST)`, Ruby's shallow Hash#merge: a body key replaces
 * the query's value where the query had it; new keys follow, in the body's order. The
 * limits apply to the whole request too: more than maxParams parameters in the two parts
 * together, or more than Rack's key space in the merged top-level hash, and
 * serializeParams answers `too_many_params` / `key_space`.
 */
export function mergeParams(get: Params, post: Params): Params {
  try {
    const hash = new RackHash(false);
    for (const [k, v] of get.hash.map) hash.map.set(k, v);
    for (const [k, v] of post.hash.map) hash.map.set(k, v);
    const count = get.count + post.count;
    const maxParams = Math.min(get.maxParams, post.maxParams);
    let rejection = get.rejection ?? post.rejection;
    if (rejection === null && count > maxParams) rejection = TOO_MANY_PARAMS;
    if (rejection === null) {
      let space = 0;
      for (const k of hash.map.keys()) space += codePoints(k);
      if (space > KEY_SPACE_LIMIT) rejection = KEY_SPACE;
    }
    return { hash, count, maxParams, rejection };
  } catch (e) {
    return { hash: new RackHash(false), count: 0, maxParams: 0, rejection: caught(e) };
  }
}

/**
 * JSON.generate's bytes of params (with `extra` = [key, value, ...] server-side pairs
 * set after them as plain keys, as parseValues does), or the Rejection: invalid UTF-8
 * that survived, nesting past JSON's 100, or a limit the merged request exceeds.
 */
export function serializeParams(params: Params, extra?: readonly string[]): Buffer | Rejection {
  try {
    if (params.rejection !== null) return params.rejection;
    let top: Val = params.hash;
    if (extra !== undefined && extra.length > 1) {
      const copy = new RackHash(false);
      for (const [k, v] of params.hash.map) copy.map.set(k, v);
      for (let e = 0; e + 1 < extra.length; e += 2) copy.map.set(extra[e]!, extra[e + 1]!);
      top = copy;
    }
    return Buffer.from(generate(top, 1));
  } catch (e) {
    return caught(e);
  }
}
