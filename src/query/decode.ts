/**
 * One component of the query (a key or a value) as Rack decodes it:
 * URI.decode_www_form_component, then force_encoding UTF-8 (the general path;
 * the fast path decodes inline).
 */
import { C_NONASCII, C_PCT, C_PLUS, HEX, bytes, validUtf8, wellFormed } from './bytes.js';
import { scratch } from './scratch.js';

/** A decoded component whose bytes are not valid UTF-8 (content irrelevant: if it survives, the request is rejected). */
export const BAD_BYTES: unique symbol = Symbol('invalid UTF-8');
export type BadBytes = typeof BAD_BYTES;
/** Decode failure: invalid %-encoding. */
export const BAD_PCT: unique symbol = Symbol('invalid %-encoding');

/**
 * Decodes q[from, to) given the classes seen in it (C_* bits). Returns the string,
 * BAD_BYTES (not valid UTF-8) or BAD_PCT (invalid %-encoding). `binary`: q holds raw
 * bytes, one per character (a form body read as latin1): a character >= 0x80 is that
 * byte, not a code point.
 */
export function decode(q: string, from: number, to: number, cls: number, binary = false): string | BadBytes | typeof BAD_PCT {
  if ((cls & C_PCT) === 0 && (!binary || (cls & C_NONASCII) === 0)) {
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
  let b = scratch.decoded;
  if (b.length < need) {
    b = bytes(need);
    if (need <= 262144) scratch.decoded = b;   // keep a bigger one, but not what a 1 MiB body needed
  }
  let n = 0, high = 0;
  for (let i = from; i < to; i++) {
    let c = q.charCodeAt(i);
    if (c === 0x25) {
      c = (HEX[q.charCodeAt(i + 1)]! << 4) | HEX[q.charCodeAt(i + 2)]!;
      i += 2;
    } else if (c === 0x2b) {
      c = 0x20;
    } else if (c >= 0x80 && binary) {
      high = 1;
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
