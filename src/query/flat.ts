import { CLASS, C_BRACKET, C_EQ, C_PCT, C_PLUS, C_SEP, bytes, hexAt, validUtf8, wellFormed, type Bytes } from './bytes.js';
import { BAD_ENCODING, INVALID_UTF8, type Rejection } from './limits.js';
import { ENTRY_WIDTH, SLAB, scratch } from './scratch.js';

/*
 * The fast path: no key has a bracket. Rack then does `params[k] = v` per segment:
 * last value wins, the key keeps its first position. Key space cannot run out
 * (the caller only comes here when the whole query is at most 65536 units long,
 * and the distinct keys are disjoint parts of it).
 *
 * One pass over the query writes the JSON text as UTF-8 bytes straight into
 * the free end of a shared slab, decoding `+` and %XX and escaping as it goes:
 * each kept pair is `,"key":"value"` (or `,"key":null`). An entry table
 * remembers where each key and value lie, to find repeated keys (by hash, then
 * bytes) and to validate, at the end, the UTF-8 of only the values that
 * survived. Without repeated keys those bytes already are the answer, a view of
 * the slab; with them the surviving ranges are compacted in first-seen order.
 * Handing out views of one slab (like Buffer.allocUnsafe's pool, but written in
 * place) costs no string, no copy and no allocation but the view per query: the
 * file backend copies the bytes once into its write buffer, Kafka takes them
 * as they are.
 */

/*
 * Module-level copies of the character classes the scan compares against in its
 * inner loop: V8 folds a module's own constants into the compiled loop, while an
 * imported binding is loaded from its module cell at every use.
 */
const PCT = C_PCT, PLUS = C_PLUS, BRACKET = C_BRACKET, SEP = C_SEP, EQ = C_EQ;

/** flat()'s answer when a key has a bracket: the query needs the Rack port. */
export const NESTED: unique symbol = Symbol('nested');

const EMPTY = Buffer.from('{}');
/** per entry: key start, key end (with quotes), value start, value end, hash, value has bytes >= 0x80 */
const E_KS = 0, E_KE = 1, E_VS = 2, E_VE = 3, E_H = 4, E_HIGH = 5, E_W = ENTRY_WIDTH;
/** past this many entries, repeated keys are found through the index */
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
  const ent = scratch.entries;
  if (!scratch.indexed) {
    for (let e = 0; e < count; e++) {
      const p = e * E_W;
      if (ent[p + E_H] === h && ent[p + E_KE]! - ent[p + E_KS]! === len && sameRange(o, ent[p + E_KS]!, ks, len)) return e;
    }
    return -1;
  }
  const mask = scratch.table.length - 1;
  for (let s = h & mask; scratch.stamp[s] === scratch.generation; s = (s + 1) & mask) {
    const p = (scratch.table[s]! - 1) * E_W;
    if (ent[p + E_H] === h && ent[p + E_KE]! - ent[p + E_KS]! === len && sameRange(o, ent[p + E_KS]!, ks, len)) return scratch.table[s]! - 1;
  }
  return -1;
}

function tableAdd(e: number, h: number): void {
  const mask = scratch.table.length - 1;
  let s = h & mask;
  while (scratch.stamp[s] === scratch.generation) s = (s + 1) & mask;
  scratch.stamp[s] = scratch.generation;
  scratch.table[s] = e + 1;
}

/** Starts a new generation of the index with the first count entries. */
function reindex(count: number): void {
  if (count * 2 > scratch.table.length) {
    let size = scratch.table.length;
    while (count * 2 > size) size *= 2;
    scratch.table = new Int32Array(size);
    scratch.stamp = new Int32Array(size);
    scratch.generation = 0;
  }
  scratch.generation = (scratch.generation + 1) | 0;
  if (scratch.generation === 0) { scratch.stamp.fill(0); scratch.generation = 1; }
  scratch.indexed = true;
  for (let e = 0; e < count; e++) tableAdd(e, scratch.entries[e * E_W + E_H]!);
}

/** Records a kept pair (new key, or a repeated one: then only its value moves). Returns the new count; sets scratch.addDup. */
function addEntry(o: Buffer, count: number, ks: number, ke: number, vs: number, ve: number, high: number): number {
  const h = hashRange(o, ks, ke);
  const at = findKey(o, count, ks, ke, h);
  if (at >= 0) {
    const p = at * E_W;
    scratch.entries[p + E_VS] = vs; scratch.entries[p + E_VE] = ve; scratch.entries[p + E_HIGH] = high;
    scratch.addDup = true;
    return count;
  }
  if ((count + 1) * E_W > scratch.entries.length) {
    const bigger = new Int32Array(scratch.entries.length * 2);
    bigger.set(scratch.entries);
    scratch.entries = bigger;
  }
  const p = count * E_W;
  scratch.entries[p + E_KS] = ks; scratch.entries[p + E_KE] = ke; scratch.entries[p + E_VS] = vs; scratch.entries[p + E_VE] = ve; scratch.entries[p + E_H] = h; scratch.entries[p + E_HIGH] = high;
  count++;
  if (scratch.indexed) {
    if (count * 2 > scratch.table.length) reindex(count);
    else tableAdd(count - 1, h);
  } else if (count > LINEAR) {
    reindex(count);
  }
  return count;
}

/**
 * The query's Values as JSON, or why not: here the query's bytes and the
 * room for the answer, then scan() writes the pairs, then the extra pairs,
 * the surviving values' UTF-8 and the closing brace.
 */
export function flat(query: string, extra: readonly string[] | undefined): Buffer | Rejection | typeof NESTED {
  // scan() reads bytes: a byte array load is cheaper than charCodeAt, and raw
  // non-ASCII characters are then already the UTF-8 bytes they stand for. A lone
  // surrogate has no UTF-8 form (utf8Write makes it U+FFFD); the general path
  // handles those queries exactly as Rack would see their bytes.
  if (scratch.src.length < query.length * 3) scratch.src = bytes(query.length * 3);
  const q = scratch.src;
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
    if (SLAB - scratch.slabAt < need) {
      scratch.slab = bytes(SLAB);
      scratch.slabAt = 0;
    }
    o = scratch.slab;
    base = scratch.slabAt;
  }
  scratch.addDup = false;
  scratch.indexed = false;
  scratch.line = null;        // the entries stop describing the last answer here
  let n = scan(len, o, base + 1);   // o[base] is left for the '{'
  if (n < 0) return REFUSED[-1 - n]!;
  let count = scratch.scanned;
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
  scratch.indexed = false;
  if (count === 0) return EMPTY;
  // only the values that survived need to be valid UTF-8
  for (let e = 0; e < count; e++) {
    const p = e * E_W;
    if (scratch.entries[p + E_HIGH] !== 0 && !validUtf8(o, scratch.entries[p + E_VS]!, scratch.entries[p + E_VE]!)) return INVALID_UTF8;
  }
  let end: number;
  if (!scratch.addDup) {
    o[base + 1] = 0x7b;       // the first entry's ',' becomes the '{'
    o[n] = 0x7d;
    base++;
    end = n + 1;
  } else {
    end = base + compact(o, base, n, count);
  }
  if (o === scratch.slab) scratch.slabAt = end;
  scratch.lineEntries = count;
  return (scratch.line = o.subarray(base, end));
}

/** scan()'s answers when it refuses the query, and what flat() answers for each. */
const BAD_PCT = -1, KEY_NOT_UTF8 = -2, BRACKET_IN_KEY = -3;
const REFUSED = [BAD_ENCODING, INVALID_UTF8, NESTED] as const;

/**
 * Writes the query's pairs (scratch.src, len bytes) at n, each
 * `,"key":"value"` or `,"key":null`, and records them in the entry table;
 * returns the new n and sets scratch.scanned to the entries' count, or
 * returns BAD_PCT, KEY_NOT_UTF8 or BRACKET_IN_KEY. A function of its own,
 * too large to be inlined, so that it has V8's inlining budget for the
 * helpers it calls per byte and flat() keeps its own for its ends. Passing
 * the query's bytes as an argument, or answering the count in a module-level
 * `let`, measured slower (BENCHMARKS.md, "The house split and the hot path").
 */
function scan(len: number, o: Bytes, n: number): number {
  const q = scratch.src;
  let count = 0, i = 0;
  while (i < len) {
    const start = n;
    o[n++] = 0x2c;            // ,
    const ks = n;
    o[n++] = 0x22;            // "
    let high = 0, j = i, c = 0;
    for (; j < len; j++) {    // key: up to '=' or a separator
      c = q[j]!;
      if (c < 128) {
        const k = CLASS[c]!;
        if (k === 0) { o[n++] = c; continue; }
        if (k === SEP || k === EQ) break;
        if (k === PCT) {
          const b = hexAt(q, j, len);
          if (b < 0) return BAD_PCT;
          j += 2;
          if (b >= 0x80) { high = 1; o[n++] = b; continue; }
          if (b === 0x5b || b === 0x5d) return BRACKET_IN_KEY;
          n = put(o, n, b);
        } else if (k === PLUS) o[n++] = 0x20;
        else if (k === BRACKET) return BRACKET_IN_KEY;
        else n = put(o, n, c);
      } else {
        high = 1;
        o[n++] = c;
      }
    }
    o[n++] = 0x22;
    const ke = n;
    o[n++] = 0x3a;            // :
    const vs = n;
    let vhigh = 0;
    if (j < len && c === 0x3d) {
      o[n++] = 0x22;
      for (j++; j < len; j++) {
        c = q[j]!;
        if (c < 128) {
          const k = CLASS[c]!;
          if (k === 0) { o[n++] = c; continue; }
          if (k === SEP) break;
          if (k === PCT) {
            const b = hexAt(q, j, len);
            if (b < 0) return BAD_PCT;
            j += 2;
            if (b >= 0x80) { vhigh = 1; o[n++] = b; continue; }
            n = put(o, n, b);
          } else if (k === PLUS) o[n++] = 0x20;
          else n = put(o, n, c);     // = [ ] are plain bytes here; " \ and controls are escaped
        } else {
          vhigh = 1;
          o[n++] = c;
        }
      }
      o[n++] = 0x22;
    } else {
      o[n++] = 0x6e; o[n++] = 0x75; o[n++] = 0x6c; o[n++] = 0x6c;   // null
    }
    if (ke - ks === 2) {
      n = start;              // empty key: Rack ignores the segment, after unescaping its value
    } else {
      // a key that is not valid UTF-8 makes Rack's `name =~ regex` raise right here
      if (high !== 0 && !validUtf8(o, ks, ke)) return KEY_NOT_UTF8;
      // (a repeated key leaves its bytes in place: the first entry now points at this value)
      count = addEntry(o, count, ks, ke, vs, n, vhigh);
    }
    i = j + 1;                // the separator and the spaces after it
    while (i < len && q[i] === 0x20) i++;
  }
  scratch.scanned = count;
  return n;
}

/**
 * Whether `line` is flat()'s last answer, as returned and without repeated
 * keys: then the entry table still says where each of its members lies
 * (memberOf), until the next call. Identity, not bytes: a Line made from it
 * (privacy's stripped copy, a merged POST) is another Buffer.
 */
export function fromFlat(line: Buffer): boolean {
  return line === scratch.line && !scratch.addDup;
}

/** hashRange of a member name's JSON text with its quotes, as the entry table keeps it. */
export function nameHash(quotedName: Buffer): number {
  return hashRange(quotedName, 0, quotedName.length);
}

/**
 * In a Line fromFlat() accepts: where member `quotedName` (hash `h`,
 * nameHash) has its value, from the entry table, without reading the Line
 * but to confirm the name; `out.start` -1 when the Line has no such member.
 * Entry `hint` is tried first (where the caller found this member last: a
 * tracker sends its parameters in one order), then every entry. Returns
 * the entry found, or `hint`. The first key lies right after the Line's
 * `{`: that is how the Line's place in the slab is known without storing it.
 */
export function memberOf(line: Buffer, quotedName: Buffer, h: number, out: { start: number; end: number }, hint: number): number {
  const ent = scratch.entries;
  const count = scratch.lineEntries;
  const base = ent[E_KS]! - 1;
  const len = quotedName.length;
  if (hint < count && sameMember(line, ent, hint * E_W, base, quotedName, h, len)) {
    out.start = ent[hint * E_W + E_VS]! - base;
    out.end = ent[hint * E_W + E_VE]! - base;
    return hint;
  }
  for (let e = 0; e < count; e++) {
    const p = e * E_W;
    if (sameMember(line, ent, p, base, quotedName, h, len)) {
      out.start = ent[p + E_VS]! - base;
      out.end = ent[p + E_VE]! - base;
      return e;
    }
  }
  out.start = -1;
  return hint;
}

function sameMember(line: Buffer, ent: Int32Array, p: number, base: number, name: Buffer, h: number, len: number): boolean {
  const ks = ent[p + E_KS]!;
  return ent[p + E_H] === h && ent[p + E_KE]! - ks === len && sameName(line, ks - base, name);
}

function sameName(line: Buffer, at: number, name: Buffer): boolean {
  for (let x = 0; x < name.length; x++) if (line[at + x] !== name[x]) return false;
  return true;
}

/** Rewrites o[base, n) as one object of the surviving entries, in first-seen order; returns its length. */
function compact(o: Bytes, base: number, n: number, count: number): number {
  if (scratch.compacted.length < n - base + 2) scratch.compacted = bytes(n - base + 4096);
  const w = scratch.compacted;
  let m = 0;
  w[m++] = 0x7b;
  for (let e = 0; e < count; e++) {
    const p = e * E_W;
    if (e > 0) w[m++] = 0x2c;
    for (let x = scratch.entries[p + E_KS]!, end = scratch.entries[p + E_KE]!; x < end; x++) w[m++] = o[x]!;
    w[m++] = 0x3a;
    for (let x = scratch.entries[p + E_VS]!, end = scratch.entries[p + E_VE]!; x < end; x++) w[m++] = o[x]!;
  }
  w[m++] = 0x7d;
  w.copy(o, base, 0, m);
  return m;
}
