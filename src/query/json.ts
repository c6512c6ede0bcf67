/**
 * Ruby's JSON.generate (json 2.6) of what the Rack port built: insertion
 * order, max_nesting 100, invalid UTF-8 raises. Its text is what
 * JSON.stringify gives for well-formed strings (see index.ts).
 */
import { BAD_BYTES } from './decode.js';
import { RackHash, type Val } from './rack.js';
import { DEPTH, INVALID_UTF8, MAX_NESTING } from './limits.js';

/** JSON string literal of a valid string; JSON.stringify only when something needs escaping. */
function quote(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/** JSON.generate: insertion order, max_nesting 100, invalid UTF-8 raises. */
export function generate(v: Val, depth: number): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return quote(v);
  if (v === BAD_BYTES) throw INVALID_UTF8;
  if (depth > MAX_NESTING) throw DEPTH;
  let out: string;
  if (v instanceof RackHash) {
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
