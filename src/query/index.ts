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
 * survives, integer-like keys that a JS object would reorder).
 *
 * Files: this one is the GET entry (parseValues); params.ts the POST entries
 * (Rails' params: parseParams, paramsFromFields, mergeParams, serializeParams);
 * limits.ts the limits and Rejections; bytes.ts byte helpers; scratch.ts the
 * memory reused across calls; flat.ts the fast path; decode.ts + rack.ts the
 * Rack port; json.ts JSON.generate. So:
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
 *   99 levels of `[x]`; a `[]` followed by `[x]` is one call, so alternations
 *   reach twice as deep: the corpus' `mixed` groups check every limit 1..100);
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

import { NESTED, flat } from './flat.js';
import { generate } from './json.js';
import { BYTESIZE_LIMIT, KEY_SPACE_LIMIT, TOO_MANY_PARAMS, caught, type QueryLimits, type Rejection } from './limits.js';
import { parseNested } from './rack.js';

export { rackLimits, type QueryLimits, type QueryRejectReason, type Rejection } from './limits.js';
export { fromFlat, memberOf, nameHash } from './flat.js';
export { mergeParams, paramsFromFields, parseParams, serializeParams, type Params } from './params.js';

/**
 * The query string (the part after '?', still %-encoded, as a JS string) → the Values
 * object serialized as JSON (UTF-8 bytes, the form every backend writes; read-only: it may
 * share its memory with other results), with exactly Rack 2.2 Rack::Utils.parse_nested_query
 * semantics (separators & and ;), or a Rejection (preallocated frozen objects, one per
 * reason; never throws: an exception it did not mean to throw comes back as `internal`
 * with the error, for the caller to answer 500 and log). `extra` holds server-side [key, value, key, value, ...] pairs
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
    return Buffer.from(generate(parseNested(query, limits.maxDepth, extra), 1));
  } catch (e) {
    return caught(e);
  }
}
