/**
 * TEMPORARY stand-in for the Rack params API of src/query/ (helpers-interfaces.md:
 * parseParams, paramsFromFields, mergeParams, serializeParams), written by the
 * trackers helper so the POST path can be built before the query helper's
 * engine is merged. The lead replaces this file at merge: callers import only
 * these four names and the `Params` type from here.
 *
 * It is built on parseValues' general path: a Params is the top level of the
 * serialized Values, key → that value's JSON text, in Rack's order; enough
 * for the shallow Hash#merge Rails' `params` does.
 */
import { parseValues, type QueryLimits, type Rejection } from './index.js';

export type { Rejection };

export class Params {
  constructor(readonly top: Map<string, string>) {}
}

/** Raw bytes → a query whose non-ASCII bytes are %XX: the parser then decodes them as Rack would the raw bytes. */
function percentBytes(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    s += c < 0x80 ? String.fromCharCode(c) : '%' + c.toString(16).toUpperCase().padStart(2, '0');
  }
  return s;
}

export function parseParams(input: string | Uint8Array, limits: QueryLimits): Params | Rejection {
  const json = parseValues(typeof input === 'string' ? input : percentBytes(input), limits);
  if ('reason' in json) return json;
  return new Params(topLevel(json.toString()));
}

export function paramsFromFields(fields: Iterable<[name: string, value: string]>, limits: QueryLimits): Params | Rejection {
  const parts: string[] = [];
  for (const [name, value] of fields) parts.push(encodeURIComponent(name) + '=' + encodeURIComponent(value));
  return parseParams(parts.join('&'), limits);
}

export function mergeParams(get: Params, post: Params): Params {
  const top = new Map(get.top);
  for (const [k, v] of post.top) top.set(k, v);
  return new Params(top);
}

export function serializeParams(params: Params, extra?: string[]): Buffer | Rejection {
  const top = new Map(params.top);
  if (extra !== undefined) for (let i = 0; i + 1 < extra.length; i += 2) top.set(extra[i]!, JSON.stringify(extra[i + 1]!));
  let out = '{';
  for (const [k, v] of top) out += (out.length > 1 ? ',' : '') + JSON.stringify(k) + ':' + v;
  return Buffer.from(out + '}');
}

/** `{"k":v,...}` → k → v's JSON text, in order (the text is JSON.generate's: no whitespace). */
function topLevel(json: string): Map<string, string> {
  const top = new Map<string, string>();
  let i = 1;
  while (i < json.length - 1) {
    if (json[i] === ',') i++;
    const keyEnd = stringEnd(json, i);
    const key = JSON.parse(json.slice(i, keyEnd)) as string;
    let j = keyEnd + 1;
    const start = j;
    let depth = 0;
    for (; j < json.length; j++) {
      const c = json[j];
      if (c === '"') j = stringEnd(json, j) - 1;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') { if (depth === 0) break; depth--; }
      else if (c === ',' && depth === 0) break;
    }
    top.set(key, json.slice(start, j));
    i = j;
  }
  return top;
}

/** Index just past the JSON string literal starting at `i`. */
function stringEnd(s: string, i: number): number {
  let j = i + 1;
  while (s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
  return j + 1;
}
