// A POST's Values against Rack 2.2.22: Rails' `params` = GET.merge(POST) for
// form bodies (raw bytes included) and multipart text fields
// (test/rack/post-expected.json, made by `ruby scripts/rack-post-oracle.rb` on a
// bookworm host), plus what the oracle cannot show: the limits over the whole
// request, server-side pairs, and that the parts are left as they were.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  mergeParams, paramsFromFields, parseParams, rackLimits, serializeParams,
  type Params, type QueryLimits, type Rejection,
} from '../../src/query/index.js';

interface Entry { id: string; query?: string; body?: string; bodyHex?: string; fields?: [string, string][]; limits?: QueryLimits }
interface Expected { id: string; json?: string; reject?: string }

const dir = new URL('../rack/', import.meta.url);
const corpus: Entry[] = JSON.parse(readFileSync(new URL('post-corpus.json', dir), 'utf8')).entries;
const oracle = JSON.parse(readFileSync(new URL('post-expected.json', dir), 'utf8')) as { rack: string; expected: Expected[] };
const utf8 = new TextDecoder('utf-8', { fatal: true });

const isParams = (r: Params | Rejection): r is Params => !('reason' in r);
const show = (r: Buffer | Rejection): string => ('reason' in r ? `reject:${r.reason}` : utf8.decode(r));

/** What scratchd records for a POST: the query first (Rack evaluates GET first), then the body, merged. */
function post(e: Entry): Buffer | Rejection {
  const limits = e.limits ?? rackLimits;
  const get = parseParams(e.query ?? '', limits);
  if (!isParams(get)) return get;
  const body = e.fields !== undefined ? paramsFromFields(e.fields, limits)
    : parseParams(e.bodyHex !== undefined ? Buffer.from(e.bodyHex, 'hex') : Buffer.from(e.body ?? '', 'utf8'), limits);
  if (!isParams(body)) return body;
  return serializeParams(mergeParams(get, body));
}

t.test('POST corpus agrees with Rack::Request#params (Rack 2.2.22) byte for byte', async (t) => {
  t.equal(oracle.rack, '2.2.22');
  t.same(oracle.expected.map((x) => x.id), corpus.map((e) => e.id), 'post-expected.json is up to date (rerun the oracle)');
  const groups = new Map<string, { n: number; bad: string[] }>();
  corpus.forEach((e, i) => {
    const x = oracle.expected[i]!;
    const want = x.reject !== undefined ? `reject:${x.reject}` : x.json!;
    let got: string;
    try {
      got = show(post(e));
    } catch (err) {
      got = `threw ${(err as Error).stack}`;
    }
    const group = e.id.replace(/-\d+$/, '');
    const g = groups.get(group) ?? { n: 0, bad: [] };
    groups.set(group, g);
    g.n++;
    if (got !== want) g.bad.push(`${e.id} ${JSON.stringify(e).slice(0, 160)}: got ${got.slice(0, 160)}, Rack ${want.slice(0, 160)}`);
  });
  for (const [group, g] of groups) t.same(g.bad.slice(0, 10), [], `${group}: ${g.n - g.bad.length}/${g.n} agree`);
});

t.test('a body is bytes: raw invalid UTF-8 only matters if it survives, `;` is no separator', async (t) => {
  const body = (s: string, limits: QueryLimits = rackLimits): string => {
    const p = parseParams(Buffer.from(s, 'latin1'), limits);
    return isParams(p) ? show(serializeParams(p)) : show(p);
  };
  t.equal(body('a=\xff&a=1'), '{"a":"1"}', 'overwritten');
  t.equal(body('a=1&a=\xff'), 'reject:invalid_utf8', 'survives');
  t.equal(body('a=\xc3\xa9&b=%C3\xa9'), '{"a":"é","b":"é"}', 'raw and %-encoded halves make one character');
  t.equal(body('a=1;b=2'), '{"a":"1;b=2"}');
  t.equal(body('a=1\x00'), '{"a":"1"}', "one trailing NUL dropped (Rack's Safari fix)");
  // the same characters as a string are a URL query: `;` separates, é is a character
  const q = parseParams('a=1;b=é', rackLimits);
  t.equal(isParams(q) && show(serializeParams(q)), '{"a":"1","b":"é"}');
});

t.test('the limits apply to each part and to the whole request', async (t) => {
  const lim = { maxParams: 4, maxDepth: 3 };
  const p = (s: string | Uint8Array): Params => {
    const r = parseParams(s, lim);
    if (!isParams(r)) throw new Error(r.reason);
    return r;
  };
  t.same(parseParams('a&b&c&d&e', lim), { reason: 'too_many_params' }, 'a query alone');
  t.same(parseParams(Buffer.from('a&b&c&d&e'), lim), { reason: 'too_many_params' }, 'a body alone');
  t.same(parseParams(Buffer.from('a;b;c;d;e'), lim) && 'ok', 'ok', 'a body counts & only, as Rack does');
  t.equal(show(serializeParams(mergeParams(p('a&b'), p(Buffer.from('c&d'))))), '{"a":null,"b":null,"c":null,"d":null}', '4 in all');
  t.same(serializeParams(mergeParams(p('a&b'), p(Buffer.from('c&d&e')))), { reason: 'too_many_params' }, '5 in all');
  t.same(serializeParams(mergeParams(p(''), p(Buffer.from('a&b&c&d')))), Buffer.from('{"a":null,"b":null,"c":null,"d":null}'), 'an empty part counts none');
  const fields = (n: number): [string, string][] => Array.from({ length: n }, (_, i) => [`k${i}`, `${i}`]);
  t.ok(isParams(paramsFromFields(fields(4), lim)));
  t.same(paramsFromFields(fields(5), lim), { reason: 'too_many_params' });
  const f = paramsFromFields(fields(3), lim) as Params;
  t.same(serializeParams(mergeParams(p('x&y'), f)), { reason: 'too_many_params' }, 'query + fields');
  t.same(parseParams('a[b][c][d]=1', lim), { reason: 'depth' });
  t.same(paramsFromFields([['a[b][c][d]', '1']], lim), { reason: 'depth' });
  // key space: each part within Rack's 65536 characters, the merged top-level hash over it
  const big = (c: string): string => Array.from({ length: 9 }, (_, i) => `${c}${i}${'x'.repeat(3998)}=1`).join('&');
  const wide = { maxParams: 4096, maxDepth: 3 };
  const a = parseParams(big('a'), wide) as Params, b = parseParams(Buffer.from(big('b')), wide) as Params;
  t.ok(isParams(a) && isParams(b), 'each part alone is within the key space');
  t.same(serializeParams(mergeParams(a, b)), { reason: 'key_space' }, 'the merged hash is not');
});

t.test('merge and serialize leave the parts as they were; extra pairs come last', async (t) => {
  const get = parseParams('a=1&ip=x&b[c]=2', rackLimits) as Params;
  const body = parseParams(Buffer.from('b=3&d=4'), rackLimits) as Params;
  const merged = mergeParams(get, body);
  t.equal(show(serializeParams(merged, ['ip', '10.0.0.1', 'ua', 'UA "1"'])), '{"a":"1","ip":"10.0.0.1","b":"3","d":"4","ua":"UA \\"1\\""}');
  t.equal(show(serializeParams(merged)), '{"a":"1","ip":"x","b":"3","d":"4"}');
  t.equal(show(serializeParams(get)), '{"a":"1","ip":"x","b":{"c":"2"}}');
  t.equal(show(serializeParams(body)), '{"b":"3","d":"4"}');
});

t.test('multipart fields: names as they are, a lone surrogate is invalid UTF-8', async (t) => {
  const f = (fields: [string, string][]): string => {
    const r = paramsFromFields(fields, rackLimits);
    return isParams(r) ? show(serializeParams(r)) : show(r);
  };
  t.equal(f([['a%5B%5D', '+']]), '{"a%5B%5D":"+"}');
  t.equal(f([['a', '\ud800'], ['a', 'ok']]), '{"a":"ok"}', 'overwritten');
  t.equal(f([['a', '\ud800']]), 'reject:invalid_utf8');
  t.equal(f([['a\udc00', '1']]), 'reject:invalid_utf8');
  t.equal(f([]), '{}');
});
