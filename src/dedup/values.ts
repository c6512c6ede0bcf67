/**
 * A top-level Values field's value, found in a Line's JSON without parsing
 * it. The Line is the converter's own output (query/json.ts): compact (no
 * whitespace), member names unique, every `"` inside a string escaped. So
 * `"name":` preceded by `{` or `,` is a member name (inside a string the
 * quotes would read `\"`), and without any nesting (no `[`, no `{` but the
 * first) it is a top-level one. A Line with nesting is walked member by
 * member instead. The Line the converter's fast path has just made is not
 * searched at all: its entry table knows where each member is (key.ts).
 */

/** Where a value lies in the Line: [start, end); start -1 when the field is absent. */
export interface Span {
  start: number;
  end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

/** Whether the Line has nested objects or arrays (then `findNested`). */
export function nested(json: Uint8Array & { indexOf(v: number, from?: number): number }): boolean {
  return json.indexOf(OPEN_ARRAY) !== -1 || json.indexOf(OPEN, 1) !== -1;
}

/** A member name to look for in Lines without nesting: `"name":` and its Horspool shift table. */
export class Needle {
  readonly pattern: Buffer;
  readonly shift = new Uint8Array(256);

  constructor(name: string) {
    this.pattern = Buffer.from(`${JSON.stringify(name)}:`);
    const m = this.pattern.length;
    this.shift.fill(Math.min(m, 255));
    for (let i = 0; i < m - 1; i++) this.shift[this.pattern[i]!] = Math.min(m - 1 - i, 255);
  }
}

/**
 * In a Line without nesting: the value of the member `needle` names.
 * Boyer-Moore-Horspool in JS: Buffer.indexOf with a multi-byte needle
 * costs more per call than this loop costs over a whole Line.
 */
export function findFlat(json: Uint8Array, needle: Needle, out: Span): Span {
  const p = needle.pattern;
  const shift = needle.shift;
  const m = p.length;
  const last = p[m - 1];
  const end = json.length;
  for (let i = m - 1; i < end; i += shift[json[i]!]!) {
    if (json[i] !== last) continue;
    const at = i - m + 1;
    let k = m - 2;
    while (k >= 0 && json[at + k] === p[k]) k--;
    if (k < 0 && at > 0 && (json[at - 1] === OPEN || json[at - 1] === COMMA)) {
      out.start = i + 1;
      out.end = valueEnd(json, out.start);
      return out;
    }
  }
  out.start = -1;
  return out;
}

/** In any Line: the value of top-level member `name` (its bytes as `"name"` without the colon). */
export function findNested(json: Uint8Array, quotedName: Uint8Array, out: Span): Span {
  let i = 1;
  while (i < json.length && json[i] === QUOTE) {
    const keyEnd = stringEnd(json, i);
    const start = keyEnd + 1; // past the colon
    const end = valueEnd(json, start);
    if (keyEnd - i === quotedName.length && same(json, i, quotedName)) {
      out.start = start;
      out.end = end;
      return out;
    }
    i = end + 1; // past the comma
  }
  out.start = -1;
  return out;
}

function same(json: Uint8Array, at: number, name: Uint8Array): boolean {
  for (let k = 0; k < name.length; k++) if (json[at + k] !== name[k]) return false;
  return true;
}

/** The index after the string starting (with its quote) at `i`. */
function stringEnd(json: Uint8Array, i: number): number {
  for (i++; json[i] !== QUOTE; i++) if (json[i] === BACKSLASH) i++;
  return i + 1;
}

/** The index after the value starting at `i`. */
function valueEnd(json: Uint8Array, i: number): number {
  const c = json[i];
  if (c === QUOTE) return stringEnd(json, i);
  if (c === OPEN || c === OPEN_ARRAY) {
    let depth = 0;
    for (; i < json.length; i++) {
      const d = json[i];
      if (d === QUOTE) i = stringEnd(json, i) - 1;
      else if (d === OPEN || d === OPEN_ARRAY) depth++;
      else if ((d === CLOSE || d === CLOSE_ARRAY) && --depth === 0) return i + 1;
    }
    return i;
  }
  // null (the converter writes no numbers or booleans, but stop at any literal's end)
  while (i < json.length && json[i] !== COMMA && json[i] !== CLOSE && json[i] !== CLOSE_ARRAY) i++;
  return i;
}
