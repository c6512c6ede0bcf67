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
 * - queries whose keys have no `[`/`]` (the tracker case) take a fast path: one
 *   pass over the query's UTF-8 bytes with a 128-entry class table (no regex, no
 *   string concatenation, no per-pair strings) that decodes `+`/%XX and JSON-escapes
 *   straight into a shared slab, whose bytes are the answer; repeated keys are
 *   found by hash in reused typed arrays;
 * - only when a key has a bracket does the general path run: a line-by-line port
 *   of QueryParser#normalize_params over Map-based hashes (a component is decoded
 *   into a string only when it has `%` or `+`), then a serializer that mirrors
 *   JSON.generate (insertion order, max_nesting 100, UTF-8 validation).
 *
 * scripts/bench-query.mjs measures it against the naive
 * JSON.stringify(Object.fromEntries(new URLSearchParams(q))).
 *
 * Rack semantics reproduced (see scripts/rack-oracle.rb and test/rack/):
 * - separators: DEFAULT_SEP, the regex [&;] followed by " *": `&` or `;` plus any
 *   spaces after it; empty segments are ignored, a segment without `=` gives nil
 *   (JSON null), `=x` and `[]=x` are ignored;
 * - before anything: count of `&` + `;` >= params limit ('too_many_params'; so
 *   `maxParams` counts like Rack's params_limit), or bytesize > 4 MiB (also
 *   QueryLimitError, also 'too_many_params'; the HTTP limits keep us far below);
 * - URI.decode_www_form_component: any `%` not followed by two hex digits raises
 *   (key first, then value, before the segment is interpreted); `+` is a space,
 *   `%2B` stays `+`; raw non-ASCII characters count as their UTF-8 bytes;
 * - a key that is not valid UTF-8 makes `name =~ regex` raise ArgumentError at
 *   that segment ('invalid_utf8'); a value that is not valid UTF-8 only matters if
 *   it survives to JSON.generate (`a=%FF&a=1` is fine);
 * - normalize_params' depth counter: the top-level call gets the limit and raises
 *   when it reaches 0, so `maxDepth` counts normalize_params calls per key:
 *   `a` and `a[]` need 1, `a[b]` and `a[][b]` 2, `a[b][c]` 3 (Rack's 100 allows
 *   99 levels of `[x]`);
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

/**
 * Node's Buffer has latin1Slice/utf8Slice (what toString('latin1'|'utf8', s, e) ends in),
 * without toString's argument handling; @types/node does not declare them.
 */
interface Bytes extends Buffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number): number;
}
const bytes = (size: number): Bytes => Buffer.allocUnsafe(size) as Bytes;

let scratch = bytes(4096);

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
function validUtf8(b: Buffer, from: number, to: number): boolean {
  let i = from;
  while (i < to) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    if (c < 0xc2 || c > 0xf4) return false;
    if (c < 0xe0) {
      if (i + 1 >= to || (b[i + 1]! & 0xc0) !== 0x80) return false;
      i += 2; continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= to) return false;
      const c1 = b[i + 1]!;
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2]! & 0xc0) !== 0x80) return false;
      if (c === 0xe0 && c1 < 0xa0) return false;      // overlong
      if (c === 0xed && c1 > 0x9f) return false;      // surrogate
      i += 3; continue;
    }
    if (i + 3 >= to) return false;
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
 * BAD_BYTES (not valid UTF-8) or BAD_PCT (invalid %-encoding).
 */
function decode(q: string, from: number, to: number, cls: number): string | BadBytes | typeof BAD_PCT {
  if ((cls & C_PCT) === 0) {
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
  const need = (to - from) * 3;
  let b = scratch;
  if (b.length < need) {
    b = bytes(need);
    if (need <= 262144) scratch = b;   // keep a bigger one, but not what a 1 MiB body needed
  }
  let n = 0, high = 0;
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
    if (c >= 0x80) high = 1;
    b[n++] = c;
  }
  if (high === 0) return b.latin1Slice(0, n);
  if (!validUtf8(b, 0, n)) return BAD_BYTES;
  return b.utf8Slice(0, n);
}


// ---------------------------------------------------------------------------
// Public entry.

/**
 * The query string (the part after '?', still %-encoded, as a JS string) → the Values
 * object serialized as JSON (UTF-8 bytes, the form every backend writes; read-only: it may
 * share its memory with other results), with exactly Rack 2.2 Rack::Utils.parse_nested_query
 * semantics (separators & and ;), or a Rejection (preallocated frozen objects, one per
 * reason; never throws). `extra` holds server-side [key, value, key, value, ...] pairs
 * applied after the query's own pairs as plain keys, already decoded (last wins, Rack's
 * key order).
 */
export function parseValues(query: string, limits: QueryLimits, extra?: readonly string[]): Buffer | Rejection {
  try {
    const n = query.length;
    if (n > 0) {
      // QueryParser#check_query_string
      if (n > BYTESIZE_LIMIT / 3 && Buffer.byteLength(query, 'utf8') > BYTESIZE_LIMIT) return TOO_MANY_PARAMS;
      if (n >= limits.maxParams) {   // fewer characters than the limit: cannot have that many separators
        let seps = 0;
        for (let p = query.indexOf('&'); p >= 0; p = query.indexOf('&', p + 1)) seps++;
        for (let p = query.indexOf(';'); p >= 0; p = query.indexOf(';', p + 1)) seps++;
        if (seps >= limits.maxParams) return TOO_MANY_PARAMS;
      }
    }
    if (limits.maxDepth >= 1 && n <= KEY_SPACE_LIMIT) {
      const r = flat(query, extra);
      if (r !== NESTED) return r;
    }
    const r = general(query, limits.maxDepth, extra);
    return typeof r === 'string' ? Buffer.from(r) : r;
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
//
// One pass over the query writes the JSON text as UTF-8 bytes straight into
// the free end of a shared slab, decoding `+` and %XX and escaping as it goes:
// each kept pair is `,"key":"value"` (or `,"key":null`). An entry table
// remembers where each key and value lie, to find repeated keys (by hash, then
// bytes) and to validate, at the end, the UTF-8 of only the values that
// survived. Without repeated keys those bytes already are the answer, a view of
// the slab; with them the surviving ranges are compacted in first-seen order.
// Handing out views of one slab (like Buffer.allocUnsafe's pool, but written in
// place) costs no string, no copy and no allocation but the view per query: the
// file backend copies the bytes once into its write buffer, Kafka takes them
// as they are.

const NESTED: unique symbol = Symbol('nested');

/** Results are carved from slabs of this size; a query needing more room gets its own buffer. */
const SLAB = 65536;
let slab = bytes(SLAB);
let slabAt = 0;
const EMPTY = Buffer.from('{}');
let OUT2 = bytes(16384);
/** The query's bytes. */
let SRC = bytes(16384);
/** per entry: key start, key end (with quotes), value start, value end, hash, value has bytes >= 0x80 */
const E_KS = 0, E_KE = 1, E_VS = 2, E_VE = 3, E_H = 4, E_HIGH = 5, E_W = 6;
let ENT = new Int32Array(E_W * 64);
/**
 * Open-addressing index (entry + 1 per slot) used past LINEAR entries. Reused across
 * calls without clearing: a slot counts only if its STAMP is this call's generation.
 */
let TABLE = new Int32Array(256);
let STAMP = new Int32Array(256);
let gen = 0;
let indexed = false;
const LINEAR = 24;

/** JSON escapes for bytes < 0x20, '"' and '\' (JSON.stringify's and Ruby json's: lowercase \u00xx) */
const ESCAPES: Uint8Array[] = [];
for (let c = 0; c < 0x60; c++) {
  const s = c < 0x20 || c === 0x22 || c === 0x5c ? JSON.stringify(String.fromCharCode(c)).slice(1, -1) : '';
  ESCAPES.push(Uint8Array.from(Buffer.from(s, 'latin1')));
}

/** Writes decoded byte b (a %XX or raw ASCII) at n, escaped for JSON; returns the new n. */
function put(o: Buffer, n: number, b: number): number {
  if (b >= 0x20 && b !== 0x22 && b !== 0x5c) { o[n++] = b; return n; }
  const e = ESCAPES[b]!;
  for (let x = 0; x < e.length; x++) o[n++] = e[x]!;
  return n;
}

/** %XX at q[j] → byte, or -1 if not two hex digits before end */
function hexAt(q: Buffer, j: number, end: number): number {
  if (j + 2 >= end) return -1;
  const h1 = q[j + 1]!, h2 = q[j + 2]!;
  if (h1 >= 128 || h2 >= 128) return -1;
  const a = HEX[h1]!, b = HEX[h2]!;
  if (a === 255 || b === 255) return -1;
  return (a << 4) | b;
}

function hashRange(o: Buffer, from: number, to: number): number {
  let h = 0;
  for (let x = from; x < to; x++) h = (Math.imul(h, 31) + o[x]!) | 0;
  return h;
}

function sameRange(o: Buffer, a: number, b: number, len: number): boolean {
  for (let x = 0; x < len; x++) if (o[a + x] !== o[b + x]) return false;
  return true;
}

/** Index of the entry whose key bytes equal o[ks, ke) (hash h), or -1. */
function findKey(o: Buffer, count: number, ks: number, ke: number, h: number): number {
  const len = ke - ks;
  const ent = ENT;
  if (!indexed) {
    for (let e = 0; e < count; e++) {
      const p = e * E_W;
      if (ent[p + E_H] === h && ent[p + E_KE]! - ent[p + E_KS]! === len && sameRange(o, ent[p + E_KS]!, ks, len)) return e;
    }
    return -1;
  }
  const mask = TABLE.length - 1;
  for (let s = h & mask; STAMP[s] === gen; s = (s + 1) & mask) {
    const p = (TABLE[s]! - 1) * E_W;
    if (ent[p + E_H] === h && ent[p + E_KE]! - ent[p + E_KS]! === len && sameRange(o, ent[p + E_KS]!, ks, len)) return TABLE[s]! - 1;
  }
  return -1;
}

function tableAdd(e: number, h: number): void {
  const mask = TABLE.length - 1;
  let s = h & mask;
  while (STAMP[s] === gen) s = (s + 1) & mask;
  STAMP[s] = gen;
  TABLE[s] = e + 1;
}

/** Starts a new generation of the index with the first count entries. */
function reindex(count: number): void {
  if (count * 2 > TABLE.length) {
    let size = TABLE.length;
    while (count * 2 > size) size *= 2;
    TABLE = new Int32Array(size);
    STAMP = new Int32Array(size);
    gen = 0;
  }
  gen = (gen + 1) | 0;
  if (gen === 0) { STAMP.fill(0); gen = 1; }
  indexed = true;
  for (let e = 0; e < count; e++) tableAdd(e, ENT[e * E_W + E_H]!);
}

/** Records a kept pair (new key, or a repeated one: then only its value moves). Returns the new count; sets addDup. */
let addDup = false;
function addEntry(o: Buffer, count: number, ks: number, ke: number, vs: number, ve: number, high: number): number {
  const h = hashRange(o, ks, ke);
  const at = findKey(o, count, ks, ke, h);
  if (at >= 0) {
    const p = at * E_W;
    ENT[p + E_VS] = vs; ENT[p + E_VE] = ve; ENT[p + E_HIGH] = high;
    addDup = true;
    return count;
  }
  if ((count + 1) * E_W > ENT.length) {
    const bigger = new Int32Array(ENT.length * 2);
    bigger.set(ENT);
    ENT = bigger;
  }
  const p = count * E_W;
  ENT[p + E_KS] = ks; ENT[p + E_KE] = ke; ENT[p + E_VS] = vs; ENT[p + E_VE] = ve; ENT[p + E_H] = h; ENT[p + E_HIGH] = high;
  count++;
  if (indexed) {
    if (count * 2 > TABLE.length) reindex(count);
    else tableAdd(count - 1, h);
  } else if (count > LINEAR) {
    reindex(count);
  }
  return count;
}

function flat(query: string, extra: readonly string[] | undefined): Buffer | Rejection | typeof NESTED {
  // The loop reads bytes: a byte array load is cheaper than charCodeAt, and raw
  // non-ASCII characters are then already the UTF-8 bytes they stand for. A lone
  // surrogate has no UTF-8 form (utf8Write makes it U+FFFD); the general path
  // handles those queries exactly as Rack would see their bytes.
  if (SRC.length < query.length * 3) SRC = bytes(query.length * 3);
  const q = SRC;
  const len = q.utf8Write(query, 0);
  if (len !== query.length && !wellFormed(query, 0, query.length)) return NESTED;
  // worst case: content grows at most 6x (a control character becomes \u00xx), and
  // each segment adds at most 8 bytes (,"":null) for at least one character of its own
  // plus its separator: 10 bytes per character is enough. Each extra pair needs
  // its JSON text as UTF-8 (at most 3 bytes per unit) plus `,:`.
  let extraJson: string[] | undefined;
  let need = len * 10 + 64;
  if (extra !== undefined) {
    extraJson = [];
    for (let e = 0; e + 1 < extra.length; e += 2) {
      const k = JSON.stringify(extra[e]!), v = JSON.stringify(extra[e + 1]!);
      extraJson.push(k, v);
      need += (k.length + v.length) * 3 + 2;
    }
  }
  let o: Bytes, base: number;
  if (need > SLAB) {
    o = bytes(need);
    base = 0;
  } else {
    if (SLAB - slabAt < need) {
      slab = bytes(SLAB);
      slabAt = 0;
    }
    o = slab;
    base = slabAt;
  }
  let n = base + 1;           // o[base] is left for the '{'
  let count = 0;
  addDup = false;
  indexed = false;
  let i = 0;
  while (i < len) {
    const start = n;
    o[n++] = 0x2c;            // ,
    const ks = n;
    o[n++] = 0x22;            // "
    let high = 0;
    let j = i, c = 0;
    // key: up to '=' or a separator
    for (; j < len; j++) {
      c = q[j]!;
      if (c < 128) {
        const k = CLASS[c]!;
        if (k === 0) { o[n++] = c; continue; }
        if (k === C_SEP || k === C_EQ) break;
        if (k === C_PCT) {
          const b = hexAt(q, j, len);
          if (b < 0) return BAD_ENCODING;
          j += 2;
          if (b >= 0x80) { high = 1; o[n++] = b; continue; }
          if (b === 0x5b || b === 0x5d) return NESTED;
          n = put(o, n, b);
        } else if (k === C_PLUS) {
          o[n++] = 0x20;
        } else if (k === C_BRACKET) {
          return NESTED;
        } else {
          n = put(o, n, c);
        }
      } else {
        high = 1;
        o[n++] = c;
      }
    }
    o[n++] = 0x22;
    const ke = n;
    const hasEq = j < len && c === 0x3d;
    if (ke - ks === 2) {
      // empty key: Rack ignores the segment, after unescaping its value
      n = start;
      if (hasEq) {
        for (j++; j < len; j++) {
          c = q[j]!;
          if (c === 0x26 || c === 0x3b) break;
          if (c === 0x25 && hexAt(q, j, len) < 0) return BAD_ENCODING;
        }
      }
    } else {
      o[n++] = 0x3a;          // :
      const vs = n;
      let vhigh = 0;
      if (hasEq) {
        o[n++] = 0x22;
        for (j++; j < len; j++) {
          c = q[j]!;
          if (c < 128) {
            const k = CLASS[c]!;
            if (k === 0) { o[n++] = c; continue; }
            if (k === C_SEP) break;
            if (k === C_PCT) {
              const b = hexAt(q, j, len);
              if (b < 0) return BAD_ENCODING;
              j += 2;
              if (b >= 0x80) { vhigh = 1; o[n++] = b; continue; }
              n = put(o, n, b);
            } else if (k === C_PLUS) {
              o[n++] = 0x20;
            } else {
              n = put(o, n, c);     // = [ ] are plain bytes here; " \ and controls are escaped
            }
          } else {
            vhigh = 1;
            o[n++] = c;
          }
        }
        o[n++] = 0x22;
      } else {
        o[n++] = 0x6e; o[n++] = 0x75; o[n++] = 0x6c; o[n++] = 0x6c;   // null
      }
      // a key that is not valid UTF-8 makes Rack's `name =~ regex` raise right here
      if (high !== 0 && !validUtf8(o, ks, ke)) return INVALID_UTF8;
      // (a repeated key leaves its bytes in place: the first entry now points at this value)
      count = addEntry(o, count, ks, ke, vs, n, vhigh);
    }
    // the separator and the spaces after it
    i = j + 1;
    while (i < len && q[i] === 0x20) i++;
  }
  if (extraJson !== undefined) {
    for (let e = 0; e + 1 < extraJson.length; e += 2) {
      o[n++] = 0x2c;
      const ks = n;
      n += o.write(extraJson[e]!, n, 'utf8');
      const ke = n;
      o[n++] = 0x3a;
      const vs = n;
      n += o.write(extraJson[e + 1]!, n, 'utf8');
      count = addEntry(o, count, ks, ke, vs, n, 0);
    }
  }
  indexed = false;
  if (count === 0) return EMPTY;
  // only the values that survived need to be valid UTF-8
  for (let e = 0; e < count; e++) {
    const p = e * E_W;
    if (ENT[p + E_HIGH] !== 0 && !validUtf8(o, ENT[p + E_VS]!, ENT[p + E_VE]!)) return INVALID_UTF8;
  }
  let end: number;
  if (!addDup) {
    o[base + 1] = 0x7b;       // the first entry's ',' becomes the '{'
    o[n] = 0x7d;
    base++;
    end = n + 1;
  } else {
    end = base + compact(o, base, n, count);
  }
  if (o === slab) slabAt = end;
  return o.subarray(base, end);
}

/** Rewrites o[base, n) as one object of the surviving entries, in first-seen order; returns its length. */
function compact(o: Bytes, base: number, n: number, count: number): number {
  if (OUT2.length < n - base + 2) OUT2 = bytes(n - base + 4096);
  const w = OUT2;
  let m = 0;
  w[m++] = 0x7b;
  for (let e = 0; e < count; e++) {
    const p = e * E_W;
    if (e > 0) w[m++] = 0x2c;
    for (let x = ENT[p + E_KS]!, end = ENT[p + E_KE]!; x < end; x++) w[m++] = o[x]!;
    w[m++] = 0x3a;
    for (let x = ENT[p + E_VS]!, end = ENT[p + E_VE]!; x < end; x++) w[m++] = o[x]!;
  }
  w[m++] = 0x7d;
  w.copy(o, base, 0, m);
  return m;
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

/** JSON string literal of a valid string; JSON.stringify only when something needs escaping. */
function quote(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/** JSON.generate: insertion order, max_nesting 100, invalid UTF-8 raises. */
function generate(v: Val, depth: number): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return quote(v);
  if (v === BAD_BYTES) throw INVALID_UTF8;
  if (depth > MAX_NESTING) throw DEPTH;
  let out: string;
  if (v instanceof Params) {
    out = '{';
    for (const [k, x] of v.map) {
      if (out.length > 1) out += ',';
      out += quote(k) + ':' + generate(x, depth + 1);
    }
    return out + '}';
  }
  out = '[';
  for (let i = 0; i < v.length; i++) out += (i > 0 ? ',' : '') + generate(v[i]!, depth + 1);
  return out + ']';
}
