/**
 * Query string → Values JSON, with exactly the semantics of Rack 2.2.22's
 * `Rack::Utils.parse_nested_query` followed by Ruby's `JSON.generate` (json 2.6),
 * as the legacy Rails application produced it (Debian bookworm's ruby-rack).
 *
 * Why it is hand-written: this runs once per tracked request, on the hot path
 * (tens of thousands of requests/s on one core). A regex split plus
 * URLSearchParams/decodeURIComponent and a generic object builder would be both
 * slower and wrong in Rack's corner cases (`;` separators, spaces swallowed after
 * separators, `+` before %-decoding, invalid UTF-8 only mattering when it
 * survives, integer-like keys that a JS object would reorder). So:
 *
 * - one charCodeAt pass per segment with a 128-entry class table (no regex per
 *   character, no per-character string concatenation);
 * - a component is %-decoded only when it contains `%` or `+`, into a reused byte
 *   buffer, turned into a string by one native call;
 * - keys without `[`/`]` (the tracker case) take a fast path that keeps
 *   [key, value] pairs in reused arrays and writes the JSON text directly;
 * - only when a key has a bracket does the general path run: a line-by-line port
 *   of QueryParser#normalize_params over Map-based hashes, then a serializer that
 *   mirrors JSON.generate (insertion order, max_nesting 100, UTF-8 validation).
 *
 * Rack semantics reproduced (see scripts/rack-oracle.rb and test/rack/):
 * - separators: the regex [&;] followed by " *" (DEFAULT_SEP), i.e. `&` or `;` plus any spaces after it; empty
 *   segments are ignored, a segment without `=` gives nil (JSON null);
 * - before anything: bytesize > 4 MiB, or count of `&`+`;` >= params limit,
 *   raises QueryLimitError;
 * - URI.decode_www_form_component: any `%` not followed by two hex digits raises
 *   (key first, then value, before the segment is interpreted); `+` is a space,
 *   `%2B` stays `+`; raw non-ASCII characters count as their UTF-8 bytes;
 * - a key that is not valid UTF-8 makes `name =~ regex` raise ArgumentError at
 *   that segment; a value that is not valid UTF-8 only matters if it survives to
 *   JSON.generate (`a=%FF&a=1` is fine);
 * - normalize_params' depth counter: the top-level call gets the limit and raises
 *   when it reaches 0, so `maxDepth` counts normalize_params calls per key (a
 *   key with N bracket groups needs up to N+1);
 * - key space: each hash counts the characters (code points) of its distinct
 *   keys, 65536 at most;
 * - JSON.generate's default max_nesting of 100 (reachable through `a[][x][][x]...`)
 *   raises NestingError, reported as 'depth'.
 *
 * JSON text: Ruby's json 2.6 escapes `"`, `\`, \b \f \n \r \t and the other
 * controls < 0x20 as lowercase \u00xx, and leaves `/`, DEL, U+2028/U+2029 and all
 * non-ASCII raw: exactly what JSON.stringify does for well-formed strings. Lone
 * surrogates (the one case where they differ) never reach the output: a decoded
 * component containing one is invalid UTF-8 and is rejected like Rack would.
 * Extra (server-side) values are not validated; JSON.stringify escapes a lone
 * surrogate in them as \udxxx, which is still valid JSON and valid UTF-8.
 */

export interface QueryLimits { readonly maxParams: number; readonly maxDepth: number; }
export type QueryRejectReason = 'bad_encoding' | 'invalid_utf8' | 'param_type' | 'depth' | 'too_many_params' | 'key_space';
export interface Rejection { readonly reason: QueryRejectReason }

/** Rack 2.2's own limits, for the corpus test (and the most the config allows). */
export const rackLimits: QueryLimits = Object.freeze({ maxParams: 4096, maxDepth: 100 });

const rej = (reason: QueryRejectReason): Rejection => Object.freeze({ reason });
const BAD_ENCODING = rej('bad_encoding');
const INVALID_UTF8 = rej('invalid_utf8');
const PARAM_TYPE = rej('param_type');
const DEPTH = rej('depth');
const TOO_MANY_PARAMS = rej('too_many_params');
const KEY_SPACE = rej('key_space');

/** Rack::QueryParser::BYTESIZE_LIMIT (4 MiB); over it Rack raises QueryLimitError. */
const BYTESIZE_LIMIT = 4194304;
/** Rack::Utils.key_space_limit (per hash). */
const KEY_SPACE_LIMIT = 65536;
/** JSON.generate's default max_nesting. */
const MAX_NESTING = 100;

// ---------------------------------------------------------------------------
// Character classes of the raw query (per UTF-16 unit; everything >= 0x80 is NONASCII).
const C_PCT = 1;      // %
const C_PLUS = 2;     // +
const C_BRACKET = 4;  // [ ]
const C_ESC = 8;      // needs a JSON escape: " \ and < 0x20
const C_NONASCII = 16;
const C_SEP = 32;     // & ;
const C_EQ = 64;      // =
const CLASS = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) CLASS[c] = C_ESC;
CLASS[0x22] = C_ESC; CLASS[0x5c] = C_ESC;
CLASS[0x25] = C_PCT; CLASS[0x2b] = C_PLUS;
CLASS[0x5b] = C_BRACKET; CLASS[0x5d] = C_BRACKET;
CLASS[0x26] = C_SEP; CLASS[0x3b] = C_SEP;
CLASS[0x3d] = C_EQ;

/** hex digit value, or 255 */
const HEX = new Uint8Array(128).fill(255);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) { HEX[0x41 + c] = 10 + c; HEX[0x61 + c] = 10 + c; }

// ---------------------------------------------------------------------------
// Component decoding (URI.decode_www_form_component + force_encoding UTF-8).

/** A decoded component whose bytes are not valid UTF-8 (content irrelevant: if it survives, the request is rejected). */
const BAD_BYTES: unique symbol = Symbol('invalid UTF-8');
type BadBytes = typeof BAD_BYTES;
/** Decode failure: invalid %-encoding. */
const BAD_PCT: unique symbol = Symbol('invalid %-encoding');

/** Flags of the last decode() result: D_ESC (needs JSON escaping), D_BRACKET (contains [ or ]). */
const D_ESC = 1;
const D_BRACKET = 2;
let decodedFlags = 0;

let scratch: Buffer = Buffer.allocUnsafe(4096);

/** true when s (non-ASCII content) has no lone surrogate */
function wellFormed(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff || i + 1 >= to) return false;
    const d = s.charCodeAt(i + 1);
    if (d < 0xdc00 || d > 0xdfff) return false;
    i++;
  }
  return true;
}

/** Strict UTF-8 validation (what both Ruby's String and json's generator accept). */
function validUtf8(b: Buffer, len: number): boolean {
  let i = 0;
  while (i < len) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    if (c < 0xc2 || c > 0xf4) return false;
    if (c < 0xe0) {
      if (i + 1 >= len || (b[i + 1]! & 0xc0) !== 0x80) return false;
      i += 2; continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= len) return false;
      const c1 = b[i + 1]!;
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2]! & 0xc0) !== 0x80) return false;
      if (c === 0xe0 && c1 < 0xa0) return false;      // overlong
      if (c === 0xed && c1 > 0x9f) return false;      // surrogate
      i += 3; continue;
    }
    if (i + 3 >= len) return false;
    const c1 = b[i + 1]!;
    if ((c1 & 0xc0) !== 0x80 || (b[i + 2]! & 0xc0) !== 0x80 || (b[i + 3]! & 0xc0) !== 0x80) return false;
    if (c === 0xf0 && c1 < 0x90) return false;        // overlong
    if (c === 0xf4 && c1 > 0x8f) return false;        // > U+10FFFF
    i += 4;
  }
  return true;
}

/**
 * Decodes q[from, to) given the classes seen in it (C_* bits). Returns the string,
 * BAD_BYTES (not valid UTF-8) or BAD_PCT (invalid %-encoding). Sets decodedFlags.
 */
function decode(q: string, from: number, to: number, cls: number): string | BadBytes | typeof BAD_PCT {
  if ((cls & C_PCT) === 0) {
    decodedFlags = ((cls & C_ESC) !== 0 ? D_ESC : 0) | ((cls & C_BRACKET) !== 0 ? D_BRACKET : 0);
    if ((cls & C_NONASCII) !== 0 && !wellFormed(q, from, to)) return BAD_BYTES;
    const s = q.slice(from, to);
    return (cls & C_PLUS) !== 0 ? s.replaceAll('+', ' ') : s;
  }
  // Rack checks the whole component for a bad escape before decoding anything.
  let p = q.indexOf('%', from);
  while (p >= 0 && p < to) {
    if (p + 2 >= to) return BAD_PCT;
    const h1 = q.charCodeAt(p + 1), h2 = q.charCodeAt(p + 2);
    if (h1 >= 128 || h2 >= 128 || HEX[h1] === 255 || HEX[h2] === 255) return BAD_PCT;
    p = q.indexOf('%', p + 3);
  }
  if (scratch.length < (to - from) * 3) scratch = Buffer.allocUnsafe((to - from) * 3 + 1024);
  const b = scratch;
  let n = 0, high = 0, flags = 0;
  for (let i = from; i < to; i++) {
    let c = q.charCodeAt(i);
    if (c === 0x25) {
      c = (HEX[q.charCodeAt(i + 1)]! << 4) | HEX[q.charCodeAt(i + 2)]!;
      i += 2;
    } else if (c === 0x2b) {
      c = 0x20;
    } else if (c >= 0x80) {
      // a raw character: its UTF-8 bytes (a lone surrogate gives the 3 bytes of
      // its code point, which are invalid UTF-8, as Rack would see them)
      high = 1;
      if (c < 0x800) { b[n++] = 0xc0 | (c >> 6); b[n++] = 0x80 | (c & 63); continue; }
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
        const d = q.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          b[n++] = 0xf0 | (cp >> 18); b[n++] = 0x80 | ((cp >> 12) & 63);
          b[n++] = 0x80 | ((cp >> 6) & 63); b[n++] = 0x80 | (cp & 63);
          i++;
          continue;
        }
      }
      b[n++] = 0xe0 | (c >> 12); b[n++] = 0x80 | ((c >> 6) & 63); b[n++] = 0x80 | (c & 63);
      continue;
    }
    if (c < 0x80) {
      const k = CLASS[c]!;
      if ((k & C_ESC) !== 0) flags |= D_ESC;
      else if ((k & C_BRACKET) !== 0) flags |= D_BRACKET;
    } else high = 1;
    b[n++] = c;
  }
  decodedFlags = flags;
  if (high === 0) return b.latin1Slice(0, n);
  if (!validUtf8(b, n)) return BAD_BYTES;
  return b.utf8Slice(0, n);
}

declare global {
  // Node's Buffer has these (what toString('latin1'|'utf8', s, e) ends in), without the argument checks.
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    utf8Slice(start: number, end: number): string;
  }
}

/** JSON text of a valid string: quoted directly when nothing needs escaping. */
function quote(s: string, needsEscape: boolean): string {
  return needsEscape ? JSON.stringify(s) : '"' + s + '"';
}

// ---------------------------------------------------------------------------
// Public entry.

/**
 * The query string (the part after '?', still %-encoded, as a JS string) → the Values
 * object serialized as JSON, with exactly Rack 2.2 Rack::Utils.parse_nested_query semantics
 * (separators & and ;), or a Rejection (preallocated frozen objects, one per reason; never
 * throws). `extra` holds server-side [key, value, key, value, ...] pairs applied after the
 * query's own pairs as plain keys, already decoded (last wins, Rack's key order).
 */
export function parseValues(query: string, limits: QueryLimits, extra?: readonly string[]): string | Rejection {
  try {
    const n = query.length;
    if (n > 0) {
      // QueryParser#check_query_string
      if (n > BYTESIZE_LIMIT / 3 && Buffer.byteLength(query, 'utf8') > BYTESIZE_LIMIT) return TOO_MANY_PARAMS;
      let seps = 0;
      for (let p = query.indexOf('&'); p >= 0; p = query.indexOf('&', p + 1)) seps++;
      for (let p = query.indexOf(';'); p >= 0; p = query.indexOf(';', p + 1)) seps++;
      if (seps >= limits.maxParams) return TOO_MANY_PARAMS;
    }
    if (limits.maxDepth >= 1 && n <= KEY_SPACE_LIMIT) {
      const r = flat(query, extra);
      if (r !== NESTED) return r;
    }
    return general(query, limits.maxDepth, extra);
  } catch (e) {
    if (e === BAD_ENCODING || e === INVALID_UTF8 || e === PARAM_TYPE || e === DEPTH || e === KEY_SPACE || e === TOO_MANY_PARAMS) {
      return e as Rejection;
    }
    // Not expected (a bug, or out of memory on a huge input): still never throw into the caller.
    return INVALID_UTF8;
  }
}

// ---------------------------------------------------------------------------
// Fast path: no key has a bracket. Rack then does `params[k] = v` per segment:
// last value wins, the key keeps its first position. Key space cannot run out
// (the caller only comes here when the whole query is at most 65536 units long,
// and the distinct keys are disjoint parts of it).

const NESTED: unique symbol = Symbol('nested');
const fKeys: string[] = [];
const fKeyJson: string[] = [];
const fVals: (string | null | BadBytes)[] = [];
const fValEsc: boolean[] = [];
let fIndex: Map<string, number> | null = null;
const LINEAR = 12;

/** params[key] = v on the flat pairs; returns the new count (fNew tells whether key was new). */
let fNew = false;
function flatSet(count: number, key: string, v: string | null | BadBytes, esc: boolean): number {
  let at = -1;
  if (fIndex !== null) {
    const x = fIndex.get(key);
    if (x !== undefined) at = x;
  } else {
    for (let i = 0; i < count; i++) if (fKeys[i] === key) { at = i; break; }
  }
  if (at >= 0) { fVals[at] = v; fValEsc[at] = esc; fNew = false; return count; }
  fKeys[count] = key; fVals[count] = v; fValEsc[count] = esc; fNew = true;
  if (fIndex !== null) fIndex.set(key, count);
  else if (count + 1 > LINEAR) {
    fIndex = new Map();
    for (let i = 0; i <= count; i++) fIndex.set(fKeys[i]!, i);
  }
  return count + 1;
}

function flat(q: string, extra: readonly string[] | undefined): string | Rejection | typeof NESTED {
  const n = q.length;
  let count = 0;
  fIndex = null;
  let i = 0;
  while (i < n) {
    // one segment: [i, j), '=' at eq (or -1); classes of key and value parts
    let j = i, eq = -1, kc = 0, vc = 0;
    for (; j < n; j++) {
      const c = q.charCodeAt(j);
      const k = c < 128 ? CLASS[c]! : C_NONASCII;
      if (k === 0) continue;
      if (k === C_SEP) break;
      if (k === C_EQ) {
        if (eq < 0) { eq = j; continue; }
        vc |= k; continue;
      }
      if (eq < 0) kc |= k; else vc |= k;
    }
    if (j > i) {
      const ke = eq < 0 ? j : eq;
      if ((kc & C_BRACKET) !== 0) return NESTED;
      let key: string | BadBytes | typeof BAD_PCT = '';
      let kFlags = 0;
      if (ke > i) {
        key = decode(q, i, ke, kc);
        if (key === BAD_PCT) return BAD_ENCODING;
        kFlags = decodedFlags;
      }
      let v: string | null | BadBytes | typeof BAD_PCT = null;
      let vFlags = 0;
      if (eq >= 0) {
        v = decode(q, eq + 1, j, vc);
        if (v === BAD_PCT) return BAD_ENCODING;
        vFlags = decodedFlags;
      }
      if (key === BAD_BYTES) return INVALID_UTF8;
      if (key !== '') {
        if ((kFlags & D_BRACKET) !== 0) return NESTED;
        count = flatSet(count, key, v, (vFlags & D_ESC) !== 0);
        if (fNew) fKeyJson[count - 1] = quote(key, (kFlags & D_ESC) !== 0);
      }
    }
    // the separator and the spaces after it
    i = j + 1;
    while (i < n && q.charCodeAt(i) === 0x20) i++;
  }
  if (extra !== undefined) {
    for (let e = 0; e + 1 < extra.length; e += 2) {
      const key = extra[e]!;
      count = flatSet(count, key, extra[e + 1]!, true);
      if (fNew) fKeyJson[count - 1] = JSON.stringify(key);
    }
  }
  let out = '{';
  for (let x = 0; x < count; x++) {
    const v = fVals[x]!;
    if (v === BAD_BYTES) return INVALID_UTF8;
    if (x > 0) out += ',';
    out += fKeyJson[x]! + ':' + (v === null ? 'null' : quote(v, fValEsc[x]!));
  }
  if (count > 256) { fKeys.length = 0; fKeyJson.length = 0; fVals.length = 0; fValEsc.length = 0; }
  fIndex = null;
  return out + '}';
}

// ---------------------------------------------------------------------------
// General path: a port of Rack 2.2.22 QueryParser#normalize_params.

type Val = string | null | BadBytes | Params | Val[];

/** Rack::QueryParser::Params: a hash that counts the characters of its keys. */
class Params {
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

function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;   // valid strings only: a high surrogate starts a pair
  }
  return n;
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
function hasKey(hash: Params, key: string): boolean {
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
    if (!(h instanceof Params) || !h.map.has(part)) return false;
    h = h.get(part);
    i = j;
  }
  return true;
}

/** QueryParser#normalize_params; name null is Ruby's nil (an empty segment). */
function normalize(params: Params, name: string | null, v: Val, depth: number): Val | undefined {
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
      if (last instanceof Params && !hasKey(last, child)) {
        normalize(last, child, v, depth - 1);
      } else {
        const r = normalize(new Params(params.track), child, v, depth - 1);
        arr.push(r === undefined ? null : r);
      }
    } else {
      let cur = params.get(k);
      if (cur === undefined || cur === null) { cur = new Params(params.track); params.set(k, cur); }
      if (!(cur instanceof Params)) throw PARAM_TYPE;
      const r = normalize(cur, after, v, depth - 1);
      params.set(k, r === undefined ? null : r);
    }
  }
  return params;
}

/** params[k] ||= []; raise ParameterTypeError unless params[k].is_a?(Array) */
function arrayAt(params: Params, k: string): Val[] {
  let cur = params.get(k);
  if (cur === undefined || cur === null) { cur = []; params.set(k, cur); }
  if (!Array.isArray(cur)) throw PARAM_TYPE;
  return cur;
}

function general(q: string, maxDepth: number, extra: readonly string[] | undefined): string | Rejection {
  const n = q.length;
  const top = new Params(n > KEY_SPACE_LIMIT);
  // String#split(/[&;] */) drops trailing empty segments: find where they start.
  let end = n;
  while (end > 0) {
    const c = q.charCodeAt(end - 1);
    if (c === 0x26 || c === 0x3b) { end--; continue; }
    if (c === 0x20) {
      // spaces count as separator only right after a separator
      let s = end - 1;
      while (s > 0 && q.charCodeAt(s - 1) === 0x20) s--;
      if (s > 0 && (q.charCodeAt(s - 1) === 0x26 || q.charCodeAt(s - 1) === 0x3b)) { end = s - 1; continue; }
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
      if (k === C_SEP) break;
      if (k === C_EQ && eq < 0) { eq = j; continue; }
      if (eq < 0) kc |= k; else vc |= k;
    }
    if (j === i) {
      normalize(top, null, null, maxDepth);   // nil name: only the depth check can fire
    } else {
      const ke = eq < 0 ? j : eq;
      const key = decode(q, i, ke, kc);
      if (key === BAD_PCT) throw BAD_ENCODING;
      let v: Val = null;
      if (eq >= 0) {
        const d = decode(q, eq + 1, j, vc);
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
  return generate(top, 1);
}

/** JSON.generate: insertion order, max_nesting 100, invalid UTF-8 raises. */
function generate(v: Val, depth: number): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === BAD_BYTES) throw INVALID_UTF8;
  if (depth > MAX_NESTING) throw DEPTH;
  let out: string;
  if (v instanceof Params) {
    out = '{';
    let first = true;
    for (const [k, x] of v.map) {
      out += (first ? '' : ',') + JSON.stringify(k) + ':' + generate(x, depth + 1);
      first = false;
    }
    return out + '}';
  }
  out = '[';
  for (let i = 0; i < v.length; i++) out += (i > 0 ? ',' : '') + generate(v[i]!, depth + 1);
  return out + ']';
}
