// A dedup key read from the converter's entry table (the Line it has just
// made) is the key the search of the Line's bytes gives (src/dedup/key.ts,
// src/query/flat.ts memberOf): for every kind of Line a hit can carry, and
// the table is used only for the Line it describes.
import fc from 'fast-check';
import t from 'tap';
import type { DedupConfig } from '../../src/dedup/config.js';
import { DedupState } from '../../src/dedup/state.js';
import { bulkValues } from '../../src/http/bulk.js';
import { fromFlat, parseValues } from '../../src/query/index.js';

const limits = { maxParams: 1000, maxDepth: 32 };
const bulkLimits = { ...limits, maxBulkRequests: 100, maxQueryBytes: 8192, maxBulkBytes: 1 << 20 };

function keyer(key: string[]) {
  const state = new DedupState(new Map(), false);
  const d = state.of('gr', { key, windowMs: 60_000, maxKeys: 1024 } as DedupConfig)!;
  return (line: Buffer): string => {
    const out = { hi: 0, lo: 0 };
    state.get(d, '10.0.0.7', '', '').keyOf(line, out);
    return `${out.hi}:${out.lo}`;
  };
}

function line(query: string, extra?: string[]): Buffer {
  const json = parseValues(query, limits, extra);
  if ('reason' in json) throw new Error(json.reason);
  return json;
}

/** The key of `json` as flat()'s last answer, and as a copy of its bytes (searched). */
function both(key: (l: Buffer) => string, json: Buffer): [string, string] {
  const copy = Buffer.from(json);
  const searched = key(copy);
  return [key(json), searched];
}

const key = keyer(['ip', 'pv_id', 'r']);

t.test('a flat Line: read from the table, the same key as the search', async (t) => {
  const json = line('action_name=Home&pv_id=a1b2c3&idsite=3&r=482913&url=https%3A%2F%2Fx.gr%2F');
  t.ok(fromFlat(json), 'the table describes it');
  const [fast, searched] = both(key, json);
  t.equal(fast, searched);
  t.not(key(line('action_name=Home&pv_id=a1b2c4&idsite=3&r=482913')), fast, 'another pv_id, another key');
});

t.test('a field absent, and a field that is a Line\'s first or last member', async (t) => {
  for (const q of ['r=1', 'pv_id=x', 'a=1', 'pv_id=x&a=1&r=2', 'r=2&a=1&pv_id=x', 'pv_id&r']) {
    const json = line(q);
    t.ok(fromFlat(json), q);
    const [fast, searched] = both(key, json);
    t.equal(fast, searched, q);
  }
  t.not(key(line('r=1')), key(line('r=1&pv_id')), 'absent is not null');
});

t.test('values and names that need JSON escaping', async (t) => {
  const json = line('pv_id=a%22b%5Cc%0Ad%E2%80%94&r=%01&a%22b=%7B%7D');
  t.ok(fromFlat(json));
  const [fast, searched] = both(key, json);
  t.equal(fast, searched);
  const odd = keyer(['a"b', 'r']);
  const [f2, s2] = both(odd, json);
  t.equal(f2, s2, 'a name with a quote');
  t.not(f2, odd(line('r=%01')), 'and it is found');
});

t.test('a repeated key: last value wins, the Line is compacted and searched', async (t) => {
  const json = line('pv_id=1&r=5&pv_id=2');
  t.equal(json.toString(), '{"pv_id":"2","r":"5"}');
  t.notOk(fromFlat(json), 'compacted: the table is not used');
  const [fast, searched] = both(key, json);
  t.equal(fast, searched);
  t.equal(fast, key(line('pv_id=2&r=5')), 'the last value is the key\'s');
});

t.test('extras: found in the table; an extra over a query key compacts', async (t) => {
  const country = keyer(['country', 'pv_id']);
  const json = line('pv_id=7&r=1', ['country', 'GR', 'ua', 'Mozilla "x"']);
  t.ok(fromFlat(json));
  const [fast, searched] = both(country, json);
  t.equal(fast, searched);
  t.not(fast, country(line('pv_id=7&r=1', ['country', 'DE'])), 'the extra\'s value is in the key');
  const over = line('pv_id=7&country=XX', ['country', 'GR']);
  t.notOk(fromFlat(over));
  t.equal(country(over), fast, 'the extra wins over the query\'s own value');
});

t.test('a Line with nesting (the Rack port): searched member by member', async (t) => {
  const json = line('pv_id=7&e_a[x]=1&r=3');
  t.notOk(fromFlat(json));
  t.equal(key(json), key(line('pv_id=7&r=3&e_a=1')), 'pv_id and r as in a flat Line');
});

t.test('a bulk POST: each entry\'s key as searched, only the last from the table', async (t) => {
  const lines = bulkValues(['?pv_id=1&r=1', 'pv_id=2&r=2', 'pv_id=3&r=3&e[a]=1', 'pv_id=4&r=4'], bulkLimits, undefined, (j) => j);
  if (!Array.isArray(lines)) throw new Error('refused');
  t.same(lines.map(fromFlat), [false, false, false, true]);
  const keys = lines.map(key);
  t.same(keys, lines.map((l) => key(Buffer.from(l))));
  t.equal(new Set(keys).size, 4);
});

t.test('a converter call that fails after its first pair leaves no stale table', async (t) => {
  const json = line('pv_id=1&r=1');
  const want = key(Buffer.from(json));
  // its pairs enter the table, then the bracket sends the query to the Rack port
  line('pv_id=99999&r=99999&x[y]=1');
  t.equal(key(json), want);
  t.ok('reason' in parseValues('zzzzzzzz=1&pv_id=%zz', limits), 'refused after its first pair');
  t.equal(key(json), want, 'after a refused query too');
});

t.test('a member where the last Line had it: found there, or searched, never read from a stale entry', async (t) => {
  const keyed = keyer(['pv_id']);
  // Both Lines are large enough for a buffer of their own, so both start at
  // the same offset: the first Line's third entry, "pv_id", lies exactly
  // where the second Line (two entries) has the value "pv_id".
  const y = 'y'.repeat(7000);
  const first = line(`x=${y}&a=b&pv_id=A`);
  t.ok(fromFlat(first));
  const [f1, s1] = both(keyed, first);
  t.equal(f1, s1, 'pv_id is the third entry');
  const second = line(`x=${y}&wwwww=pv_id`);
  t.ok(fromFlat(second));
  t.equal(second.indexOf('"pv_id"'), first.indexOf('"pv_id"'), 'the stale entry matches these bytes');
  const [f2, s2] = both(keyed, second);
  t.equal(f2, s2, 'absent, as the search says');
  const moved = line(`pv_id=A&x=${y}&a=b`);
  const [f3, s3] = both(keyed, moved);
  t.equal(f3, s3, 'in another place: found by the scan');
  t.equal(f3, f1, 'the same pv_id, the same key');
});

t.test('any query: the table gives the search\'s key', async (t) => {
  const part = fc.oneof(fc.constantFrom('pv_id', 'r', 'pv_id=', 'r=', '=', '&', ';', '%22', '%5C', '%0A', '+', 'é', '%E2%80%94', '[', 'x'), fc.string({ maxLength: 4 }));
  const q = fc.array(part, { maxLength: 16 }).map((a) => a.join(''));
  let fast = 0;
  fc.assert(fc.property(q, fc.boolean(), (query, extra) => {
    const json = parseValues(query, limits, extra ? ['r', 'srv', 'pv_id2', 'y'] : undefined);
    if ('reason' in json) return true;
    if (fromFlat(json)) fast++;
    const [a, b] = both(key, json);
    return a === b;
  }), { numRuns: 20_000 });
  t.ok(fast > 5000, `the table was used ${fast} times`);
});
