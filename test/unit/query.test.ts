// The query converter against the Rack 2.2.22 oracle (test/rack/expected.json, made by
// `ruby scripts/rack-oracle.rb` on a bookworm host), plus what the oracle cannot show:
// lone surrogates, the 4 MiB bytesize limit, extra pairs on the fast path, and never throwing
// (an exception inside the converter is `internal`, which no Rack answer is: any would fail here).
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parseValues, rackLimits, type QueryLimits, type Rejection } from '../../src/query/index.js';

interface Entry { id: string; q: string; limits?: Partial<QueryLimits>; extra?: string[] }
interface Expected { id: string; bytes: number; json?: string; sha256?: string; length?: number; reject?: string }

const dir = new URL('../rack/', import.meta.url);
const corpus: Entry[] = JSON.parse(readFileSync(new URL('corpus.json', dir), 'utf8')).entries;
const expected: Expected[] = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')).expected;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const REASONS = new Set(['bad_encoding', 'invalid_utf8', 'param_type', 'depth', 'too_many_params', 'key_space']);
/** The Values JSON as text (parseValues gives its UTF-8 bytes), or the Rejection. */
const run = (q: string, limits: QueryLimits = rackLimits, extra?: string[]): string | Rejection => {
  const r = parseValues(q, limits, extra);
  return 'reason' in r ? r : utf8.decode(r);
};
const show = (r: string | Rejection): string => (typeof r === 'string' ? r : `reject:${r.reason}`);

t.test('rackLimits are Rack 2.2 defaults', async (t) => {
  t.same(rackLimits, { maxParams: 4096, maxDepth: 100 });
  t.ok(Object.isFrozen(rackLimits));
});

t.test('corpus agrees with Rack 2.2.22 byte for byte', async (t) => {
  t.equal(expected.length, corpus.length, 'expected.json is up to date (rerun the oracle)');
  const groups = new Map<string, { n: number; bad: string[] }>();
  for (let i = 0; i < corpus.length; i++) {
    const e = corpus[i]!, x = expected[i]!;
    if (x.id !== e.id || x.bytes !== Buffer.byteLength(e.q)) {
      t.fail(`expected.json is stale at ${e.id}`);
      return;
    }
    const limits = e.limits ? { ...rackLimits, ...e.limits } : rackLimits;
    const r = run(e.q, limits, e.extra);
    let ok: boolean, want: string;
    if (x.reject !== undefined) {
      want = `reject:${x.reject}`;
      ok = typeof r !== 'string' && r.reason === x.reject;
    } else if (x.json !== undefined) {
      want = x.json;
      ok = r === x.json;
    } else {
      want = `sha256:${x.sha256} (${x.length} bytes)`;
      ok = typeof r === 'string' && Buffer.byteLength(r) === x.length &&
        createHash('sha256').update(r, 'utf8').digest('hex') === x.sha256;
    }
    const group = e.id.replace(/-\d+$/, '').replace(/^mixedd\d+$/, 'mixed, maxDepth 1..100');
    const g = groups.get(group) ?? { n: 0, bad: [] };
    groups.set(group, g);
    g.n++;
    if (!ok) g.bad.push(`${e.id} ${JSON.stringify(e.q.slice(0, 120))}: got ${show(r).slice(0, 200)}, want ${want.slice(0, 200)}`);
  }
  for (const [group, g] of groups) {
    t.same(g.bad.slice(0, 15), [], `${group}: ${g.n - g.bad.length}/${g.n} agree`);
  }
});

t.test('rejections are the preallocated frozen objects', async (t) => {
  const a = run('a=%'), b = run('b=%zz');
  t.not(typeof a, 'string');
  t.equal(a, b, 'same object per reason');
  t.ok(Object.isFrozen(a));
  t.same(Object.keys(a as object), ['reason']);
});

t.test('a raw lone surrogate is the invalid UTF-8 it would be as bytes', async (t) => {
  // uWS never produces one (it decodes UTF-8), but parseValues must not emit
  // JSON.stringify's \udxxx escape where Rack would have failed.
  for (const [raw, pct] of [
    ['a=\ud800', 'a=%ED%A0%80'], ['a=x\udfff', 'a=x%ED%BF%BF'], ['\ud800=1', '%ED%A0%80=1'],
    ['a[\udc00]=1', 'a[%ED%B0%80]=1'], ['a=\ud800&a=1', 'a=%ED%A0%80&a=1'], ['a[]=\ud83d', 'a[]=%ED%A0%BD'],
    ['a=%41\ud800', 'a=%41%ED%A0%80'], ['a=+\ud800', 'a=+%ED%A0%80'],
  ] as const) {
    t.equal(show(run(raw)), show(run(pct)), JSON.stringify(raw));
  }
  t.equal(run('a=\ud83d\ude00'), '{"a":"😀"}', 'a pair is fine');
  t.equal(run('a=%F0%9F%98%80\ud83d\ude00'), '{"a":"😀😀"}');
});

t.test('the 4 MiB bytesize limit (QueryLimitError) counts UTF-8 bytes', async (t) => {
  const ok = 'a=' + 'x'.repeat(4194304 - 2);
  t.equal(typeof run(ok), 'string', 'exactly 4 MiB');
  t.same(run(ok + 'x'), { reason: 'too_many_params' }, 'one byte more');
  const greek = 'a=' + 'α'.repeat(2097151);                 // 2 + 4194302 bytes, JS length 2097153
  t.equal(typeof run(greek), 'string');
  t.same(run(greek + 'x'), { reason: 'too_many_params' });
});

t.test('configured limits', async (t) => {
  const lim = (maxParams: number, maxDepth: number): QueryLimits => ({ maxParams, maxDepth });
  // maxParams counts & and ; like Rack's params_limit: rejected when separators >= limit
  t.equal(run('a=1&b=2&c=3', lim(3, 32)), '{"a":"1","b":"2","c":"3"}');
  t.same(run('a=1&b=2&c=3&', lim(3, 32)), { reason: 'too_many_params' }, 'a trailing & counts');
  t.same(run('a=1;b=2&c=3;d', lim(3, 32)), { reason: 'too_many_params' });
  t.same(run('a=%&b&c&d', lim(3, 32)), { reason: 'too_many_params' }, 'checked before decoding');
  t.equal(run('a=1', lim(1, 32)), '{"a":"1"}');
  // maxDepth counts normalize_params calls: a key with N bracket groups needs N+1
  t.equal(run('a[b][c]=1', lim(1000, 3)), '{"a":{"b":{"c":"1"}}}');
  t.same(run('a[b][c][d]=1', lim(1000, 3)), { reason: 'depth' });
  t.equal(run('a[]=1', lim(1000, 1)), '{"a":["1"]}', 'a[] does not recurse');
  t.same(run('a[][b]=1', lim(1000, 1)), { reason: 'depth' });
  t.equal(run('a[][b]=1', lim(1000, 2)), '{"a":[{"b":"1"}]}');
  const deep = (n: number) => 'a' + '[x]'.repeat(n) + '=1';
  t.equal(typeof run(deep(31), lim(1000, 32)), 'string');
  t.same(run(deep(32), lim(1000, 32)), { reason: 'depth' });
  t.equal(typeof run(deep(99)), 'string');
  t.same(run(deep(100)), { reason: 'depth' });
});

t.test('extra pairs: plain keys after the query, last wins, first position kept', async (t) => {
  t.equal(run('', rackLimits, ['ip', '1.2.3.4']), '{"ip":"1.2.3.4"}');
  t.equal(run('a=1&ip=spoofed&b=2', rackLimits, ['ip', '1.2.3.4']), '{"a":"1","ip":"1.2.3.4","b":"2"}');
  t.equal(run('a[x]=1&b=2', rackLimits, ['a', 'plain', 'c', '3']), '{"a":"plain","b":"2","c":"3"}');
  t.equal(run('a=%FF', rackLimits, ['a', 'ok']), '{"a":"ok"}', 'replaces an invalid value');
  t.same(run('a=%', rackLimits, ['a', 'ok']), { reason: 'bad_encoding' }, 'does not rescue a parse error');
  t.equal(run('2=b&1=a', rackLimits, ['0', 'z']), '{"2":"b","1":"a","0":"z"}', 'integer-like keys keep order');
  t.equal(run('x=1', rackLimits, ['ua', 'Mozilla "5" \\ \n é', 't', '2024-05-01T12:00:00+03:00']),
    '{"x":"1","ua":"Mozilla \\"5\\" \\\\ \\n é","t":"2024-05-01T12:00:00+03:00"}');
  t.equal(run('x=1', rackLimits, ['k', 'v', 'dangling']), '{"x":"1","k":"v"}', 'an odd trailing key is ignored');
  // many keys: past the linear scan into the index
  const q = Array.from({ length: 30 }, (_, i) => `k${i}=${i}`).join('&');
  const r = run(q + '&k3=again', rackLimits, ['k29', 'x', 'new', 'y']) as string;
  const o = JSON.parse(r);
  t.equal(o.k3, 'again');
  t.equal(o.k29, 'x');
  t.equal(Object.keys(o).length, 31);
  t.ok(r.endsWith('"k29":"x","new":"y"}'));
});

t.test('repeated keys beyond the linear scan', async (t) => {
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
  const q = [...keys.map((k) => `${k}=1`), ...keys.reverse().map((k) => `${k}=2`)].join('&');
  const r = run(q) as string;
  t.equal(r, '{' + keys.reverse().map((k) => `"${k}":"2"`).join(',') + '}');
  // and the scratch state is reset for the next call
  t.equal(run('k0=z'), '{"k0":"z"}');
});

t.test('never throws; answers are JSON objects or known reasons', async (t) => {
  const alphabet = ['a', 'b', '0', '[', ']', '[]', '=', '&', ';', ' ', '+', '%', '%5B', '%5D', '%FF', '%C3%A9',
    'é', '😀', '\ud800', '\n', '%0A', '%2', '"', '\\', '\u0000', '__proto__', 'constructor'];
  fc.assert(fc.property(
    fc.array(fc.constantFrom(...alphabet), { maxLength: 40 }),
    fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 10 }),
    (parts, maxParams, maxDepth) => {
      const r = run(parts.join(''), { maxParams, maxDepth });
      if (typeof r === 'string') {
        const v = JSON.parse(r);
        return typeof v === 'object' && v !== null && !Array.isArray(v) && !/\\ud[89a-f]/i.test(r);
      }
      return REASONS.has(r.reason);
    }), { numRuns: 3000, seed: 20260125 });
  t.pass('3000 random queries');
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (q) => {
    const r = run(q);
    return typeof r === 'string' ? JSON.parse(r) !== null : REASONS.has(r.reason);
  }), { numRuns: 2000, seed: 7 });
  t.pass('2000 random strings');
});

t.test('each result keeps its bytes while later queries are parsed (results share memory)', async (t) => {
  // Enough results to fill several of the converter's shared slabs, of every
  // kind it makes: plain, repeated keys (compacted), with server-side pairs,
  // empty, and one too big for a slab (its own buffer).
  const kept: { q: string; bytes: Buffer; text: string }[] = [];
  for (let i = 0; i < 3000; i++) {
    const q = i % 500 === 7 ? `big=${'x%20'.repeat(9000)}&i=${i}`
      : i % 5 === 0 ? `a=${i}&b=%CE%B1${i}&a=${i * 2}`
        : i % 7 === 0 ? '' : `idsite=${i}&url=https%3A%2F%2Fexample.gr%2F${'p'.repeat(i % 300)}&t=%CE%95${i}`;
    const extra = i % 3 === 0 ? ['ip', `10.0.0.${i % 256}`] : undefined;
    const r = parseValues(q, rackLimits, extra);
    if ('reason' in r) throw new Error(`${q}: ${r.reason}`);
    kept.push({ q, bytes: r, text: utf8.decode(r) });
  }
  const changed = kept.filter((k) => utf8.decode(k.bytes) !== k.text).map((k) => k.q.slice(0, 60));
  t.same(changed, [], 'no result changed after 3000 more parses');
  t.equal(kept[5]!.text, '{"a":"10","b":"α5"}', 'a repeated key keeps its first place and its last value');
  t.equal(kept[7]!.text, `{"big":"${'x '.repeat(9000)}","i":"7"}`, 'the one too big for a slab');
  t.equal(kept[14]!.text, '{}');
  t.equal(kept[3]!.text, `{"idsite":"3","url":"https://example.gr/ppp","t":"Ε3","ip":"10.0.0.3"}`);
});
