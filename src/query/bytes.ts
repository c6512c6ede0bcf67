/**
 * Byte-level helpers shared by both engines: character classes of the raw
 * query, hex digits, strict UTF-8 validation, and Node's unchecked Buffer
 * slicers.
 */

// Character classes of the raw query (per byte or UTF-16 unit; everything >= 0x80 is C_NONASCII).
export const C_PCT = 1;      // %
export const C_PLUS = 2;     // +
export const C_BRACKET = 4;  // [ ]
export const C_ESC = 8;      // needs a JSON escape: " \ and < 0x20
export const C_NONASCII = 16;
export const C_SEP = 32;     // & ;
export const C_EQ = 64;      // =
export const CLASS = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) CLASS[c] = C_ESC;
CLASS[0x22] = C_ESC; CLASS[0x5c] = C_ESC;
CLASS[0x25] = C_PCT; CLASS[0x2b] = C_PLUS;
CLASS[0x5b] = C_BRACKET; CLASS[0x5d] = C_BRACKET;
CLASS[0x26] = C_SEP; CLASS[0x3b] = C_SEP;
CLASS[0x3d] = C_EQ;

/** hex digit value, or 255 */
export const HEX = new Uint8Array(128).fill(255);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) { HEX[0x41 + c] = 10 + c; HEX[0x61 + c] = 10 + c; }

/** The byte %XX at q[j] stands for, or -1 when it is not a valid %-escape. */
export function hexAt(q: Uint8Array, j: number, len: number): number {
  if (j + 2 >= len) return -1;
  const h1 = q[j + 1]!, h2 = q[j + 2]!;
  if (h1 >= 128 || h2 >= 128) return -1;
  const a = HEX[h1]!, b = HEX[h2]!;
  if (a === 255 || b === 255) return -1;
  return (a << 4) | b;
}

/**
 * Node's Buffer has latin1Slice/utf8Slice (what toString('latin1'|'utf8', s, e) ends in),
 * without toString's argument handling; @types/node does not declare them.
 */
export interface Bytes extends Buffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number): number;
}
export const bytes = (size: number): Bytes => Buffer.allocUnsafe(size) as Bytes;

/** true when s (non-ASCII content) has no lone surrogate */
export function wellFormed(s: string, from: number, to: number): boolean {
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
export function validUtf8(b: Uint8Array, from: number, to: number): boolean {
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

/** Characters (code points) of a well-formed string, as Ruby's String#size counts them. */
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;   // valid strings only: a high surrogate starts a pair
  }
  return n;
}
