/**
 * The general path: a line-by-line port of Rack 2.2.22's
 * QueryParser#parse_nested_query and #normalize_params over Map-based hashes
 * (a JS object would reorder integer-like keys). Throws the preallocated
 * Rejection where Rack raises.
 */
import { CLASS, C_NONASCII, C_SEP, C_EQ, codePoints, wellFormed } from './bytes.js';
import { BAD_BYTES, BAD_PCT, decode, type BadBytes } from './decode.js';
import { BAD_ENCODING, DEPTH, INVALID_UTF8, KEY_SPACE, KEY_SPACE_LIMIT, PARAM_TYPE } from './limits.js';

export type Val = string | null | BadBytes | RackHash | Val[];

/** Rack::QueryParser::Params: a hash that counts the characters of its keys. */
export class RackHash {
  readonly map = new Map<string, Val>();
  size = 0;
  constructor(readonly track: boolean) {}
  get(key: string): Val | undefined { return this.map.get(key); }
  set(key: string, v: Val): void {
    if (this.track && !this.map.has(key)) {
      this.size += codePoints(key);
      if (this.size > KEY_SPACE_LIMIT) throw KEY_SPACE;
    }
    this.map.set(key, v);
  }
}

const isBracket = (c: number): boolean => c === 0x5b || c === 0x5d;

/** after =~ %r(^\[\]\[([^\[\]]+)\]$) — Ruby's ^ and $ are line anchors. Returns $1 or null. */
function matchArrayOfHash(after: string): string | null {
  const len = after.length;
  for (let p = 0; p < len; p = after.indexOf('\n', p) + 1) {
    if (after.startsWith('[][', p)) {
      let q = p + 3;
      while (q < len && !isBracket(after.charCodeAt(q))) q++;
      if (q > p + 3 && q < len && after.charCodeAt(q) === 0x5d && (q + 1 === len || after.charCodeAt(q + 1) === 0x0a)) {
        return after.slice(p + 3, q);
      }
    }
    if (after.indexOf('\n', p) < 0) break;
  }
  return null;
}

/** after =~ %r(^\[\](.+)$) — `.` stops at a newline. Returns $1 or null. */
function matchArrayOfAny(after: string): string | null {
  const len = after.length;
  for (let p = 0; p < len; p = after.indexOf('\n', p) + 1) {
    if (after.startsWith('[]', p)) {
      let e = after.indexOf('\n', p + 2);
      if (e < 0) e = len;
      if (e > p + 2) return after.slice(p + 2, e);
    }
    if (after.indexOf('\n', p) < 0) break;
  }
  return null;
}

/** QueryParser#params_hash_has_key? */
function hasKey(hash: RackHash, key: string): boolean {
  if (key.includes('[]')) return false;
  let h: Val | undefined = hash;
  const len = key.length;
  let i = 0;
  while (i < len) {
    while (i < len && isBracket(key.charCodeAt(i))) i++;
    if (i >= len) break;
    let j = i;
    while (j < len && !isBracket(key.charCodeAt(j))) j++;
    const part = key.slice(i, j);
    if (!(h instanceof RackHash) || !h.map.has(part)) return false;
    h = h.get(part);
    i = j;
  }
  return true;
}

/** QueryParser#normalize_params; name null is Ruby's nil (an empty segment). */
function normalize(params: RackHash, name: string | null, v: Val, depth: number): Val | undefined {
  if (depth <= 0) throw DEPTH;
  // name =~ %r(\A[\[\]]*([^\[\]]+)\]*); k = $1 || ''; after = $' || ''
  let k = '', after = '';
  if (name !== null) {
    const len = name.length;
    let i = 0;
    while (i < len && isBracket(name.charCodeAt(i))) i++;
    if (i < len) {
      let j = i + 1;
      while (j < len && !isBracket(name.charCodeAt(j))) j++;
      k = name.slice(i, j);
      while (j < len && name.charCodeAt(j) === 0x5d) j++;
      after = name.slice(j);
    }
  }
  if (k === '') {
    if (v !== null && name === '[]') return [v];
    return null;
  }
  if (after === '') {
    params.set(k, v);
  } else if (after === '[') {
    params.set(name!, v);
  } else if (after === '[]') {
    const arr = arrayAt(params, k);
    arr.push(v);
  } else {
    const child = matchArrayOfHash(after) ?? matchArrayOfAny(after);
    if (child !== null) {
      const arr = arrayAt(params, k);
      const last = arr.length > 0 ? arr[arr.length - 1] : null;
      if (last instanceof RackHash && !hasKey(last, child)) {
        normalize(last, child, v, depth - 1);
      } else {
        const r = normalize(new RackHash(params.track), child, v, depth - 1);
        arr.push(r === undefined ? null : r);
      }
    } else {
      let cur = params.get(k);
      if (cur === undefined || cur === null) { cur = new RackHash(params.track); params.set(k, cur); }
      if (!(cur instanceof RackHash)) throw PARAM_TYPE;
      const r = normalize(cur, after, v, depth - 1);
      params.set(k, r === undefined ? null : r);
    }
  }
  return params;
}

/** params[k] ||= []; raise ParameterTypeError unless params[k].is_a?(Array) */
function arrayAt(params: RackHash, k: string): Val[] {
  let cur = params.get(k);
  if (cur === undefined || cur === null) { cur = []; params.set(k, cur); }
  if (!Array.isArray(cur)) throw PARAM_TYPE;
  return cur;
}

/**
 * QueryParser#parse_nested_query up to (not including) `to_h`: throws the Rejection where
 * Rack raises. `body`: q is a form body's bytes, one character per byte (latin1), parsed as
 * Rack::Request#POST does: separator `&` only (`parse_query(form_vars, '&')`), and each
 * byte >= 0x80 is that byte, as if it were %-encoded.
 */
export function parseNested(q: string, maxDepth: number, extra: readonly string[] | undefined, body = false): RackHash {
  const n = q.length;
  const top = new RackHash(n > KEY_SPACE_LIMIT);
  const isSep = (c: number): boolean => c === 0x26 || (c === 0x3b && !body);
  // String#split(/[&;] */) drops trailing empty segments: find where they start.
  let end = n;
  while (end > 0) {
    const c = q.charCodeAt(end - 1);
    if (isSep(c)) { end--; continue; }
    if (c === 0x20) {
      // spaces count as separator only right after a separator
      let s = end - 1;
      while (s > 0 && q.charCodeAt(s - 1) === 0x20) s--;
      if (s > 0 && isSep(q.charCodeAt(s - 1))) { end = s - 1; continue; }
    }
    break;
  }
  let i = 0;
  while (i < end) {
    let j = i, eq = -1, kc = 0, vc = 0;
    for (; j < end; j++) {
      const c = q.charCodeAt(j);
      const k = c < 128 ? CLASS[c]! : C_NONASCII;
      if (k === 0) continue;
      if (k === C_SEP && isSep(c)) break;
      if (k === C_EQ && eq < 0) { eq = j; continue; }
      if (eq < 0) kc |= k; else vc |= k;
    }
    if (j === i) {
      normalize(top, null, null, maxDepth);   // nil name: only the depth check can fire
    } else {
      const ke = eq < 0 ? j : eq;
      const key = decode(q, i, ke, kc, body);
      if (key === BAD_PCT) throw BAD_ENCODING;
      let v: Val = null;
      if (eq >= 0) {
        const d = decode(q, eq + 1, j, vc, body);
        if (d === BAD_PCT) throw BAD_ENCODING;
        v = d;
      }
      if (maxDepth <= 0) throw DEPTH;
      if (key === BAD_BYTES) throw INVALID_UTF8;   // name =~ regex raises ArgumentError on a broken string
      normalize(top, key, v, maxDepth);
    }
    i = j + 1;
    while (i < end && q.charCodeAt(i) === 0x20) i++;
  }
  if (extra !== undefined) {
    for (let e = 0; e + 1 < extra.length; e += 2) top.map.set(extra[e]!, extra[e + 1]!);
  }
  return top;
}

/**
 * One multipart text field into the params, as Rack's multipart parser does it:
 * normalize_params with the name and value as they are.
 */
export function normalizeField(top: RackHash, name: string, value: string, maxDepth: number): void {
  if (maxDepth <= 0) throw DEPTH;
  // a string with no UTF-8 form: Rack would hold invalid bytes (the name then raises in `=~`)
  if (!wellFormed(name, 0, name.length)) throw INVALID_UTF8;
  normalize(top, name, wellFormed(value, 0, value.length) ? value : BAD_BYTES, maxDepth);
}
