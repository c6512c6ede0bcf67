// Audit of issue 29's key (src/dedup/key.ts, hash.ts, src/query/flat.ts
// memberOf): the key read from the converter's entry table, with each
// flavor's remembered entries, is the key the search of a copy of the same
// bytes gives, over long runs of mixed Lines; and keys that differ hash
// apart (exhaustively over small alphabets: a 64-bit seeded hash collides by
// chance about never, so any collision is the construction's: how parts are
// packed into steps, or a mark the mixing treats specially).
import fc from 'fast-check';
import t, { type Test } from 'tap';
import type { DedupConfig } from '../../src/dedup/config.js';
import { randomBytes } from 'node:crypto';
import { Hash64, seedHash } from '../../src/dedup/hash.js';
import { DedupState } from '../../src/dedup/state.js';
import { bulkValues } from '../../src/http/bulk.js';
import { fromFlat, parseValues } from '../../src/query/index.js';

const limits = { maxParams: 4096, maxDepth: 32 };
const bulkLimits = { ...limits, maxBulkRequests: 100, maxQueryBytes: 1 << 20, maxBulkBytes: 1 << 24 };

type Keyer = (line: Buffer, ip?: string, ua?: string, query?: string) => string;

/** A flavor's key function; every call goes through the same KeySpec (its hints). */
function keyer(key: string[]): Keyer {
  const state = new DedupState(new Map(), false);
  const d = state.of('f', { key, windowMs: 60_000, maxKeys: 1024 } as DedupConfig)!;
  return (line, ip = '', ua = '', query = '') => {
    const out = { hi: 0, lo: 0 };
    state.get(d, ip, ua, query).keyOf(line, out);
    return `${out.hi}:${out.lo}`;
  };
}

const keyers = [
  keyer(['pv_id', 'r']),
  keyer(['r', 'country', 'pv_id']),
  keyer(['ip', 'userAgent', 'action_name']),
  keyer(['_id', 'url', 'idsite', 'pv_id', 'r', 'e_c']),
  keyer(['srv']),
];

// Matomo's parameters, values that need escaping or are not ASCII, and the
// converter's other answers (repeated keys, nesting, refusals, a lone surrogate).
const name = fc.constantFrom('pv_id', 'r', 'idsite', 'action_name', 'url', '_id', 'e_c', 'country', 'srv', 'pv', 'pv_id2', 'x');
const value = fc.oneof(
  fc.constantFrom('', 'a1b2c3', '%22', '%5C', '%0A', '+', 'é', '%E2%80%94', 'pv_id', '%22pv_id%22%3A', ',"r":', '[1]', 'null'),
  fc.string({ maxLength: 6 }).map(encodeURIComponent),
);
const pair = fc.tuple(name, fc.oneof(value.map((v) => `=${v}`), fc.constant(''))).map(([k, v]) => k + v);
// Mostly distinct names (a Line the table describes), sometimes a repeat (compacted).
const pairs = fc.oneof(fc.uniqueArray(pair, { maxLength: 10, selector: (p) => p.split('=')[0] }), fc.array(pair, { maxLength: 10 }));
const pad = fc.constantFrom(0, 0, 0, 10, 700, 3000, 6000, 6600, 9000, 40000);
const twist = fc.constantFrom('', '', '', '', '&e[a]=1', '&bad=%zz', '&q=\ud800', '&&;', '&=x', '&pv_id=again');
const query = fc.tuple(pairs, pad, fc.nat(10), twist).map(([pairs, n, at, tail]) => {
  const p = [...pairs];
  if (n > 0) p.splice(at % (p.length + 1), 0, `pad=${'y'.repeat(n)}`);
  return p.join('&') + tail;
});
const extra = fc.constantFrom<string[] | undefined>(undefined, ['country', 'GR'], ['country', 'GR', 'srv', 'é "x"'], ['pv_id', 'server']);

t.test('a run of mixed Lines: every flavor\'s key from the table is the key of a copy', async (t) => {
  let fast = 0;
  let total = 0;
  fc.assert(fc.property(fc.array(fc.tuple(query, extra, fc.nat()), { minLength: 1, maxLength: 30 }), (run) => {
    const held: Buffer[] = [];
    for (const [q, x, pick] of run) {
      const json = parseValues(q, limits, x);
      if (!('reason' in json)) held.push(json);
      if (held.length === 0) continue;
      // The newest Line (from the table when fromFlat) and an older one (searched).
      for (const line of [held[held.length - 1]!, held[pick % held.length]!]) {
        total++;
        if (fromFlat(line)) fast++;
        for (let k = 0; k < keyers.length; k++) {
          const key = keyers[(k + pick) % keyers.length]!;
          const a = key(line, '10.0.0.1', 'UA');
          const b = key(Buffer.from(line), '10.0.0.1', 'UA');
          if (a !== b) throw new Error(`key ${k} of ${line.toString()} (query ${JSON.stringify(q)}): ${a} from the table, ${b} searched`);
        }
      }
    }
    return true;
  }), { numRuns: 600 });
  t.ok(fast > total / 4, `the table was used for ${fast} of ${total} Lines`);
});

t.test('a bulk body of Lines of many sizes and orders: each entry keyed as its copy', async (t) => {
  fc.assert(fc.property(fc.array(query, { minLength: 1, maxLength: 12 }), extra, (queries, x) => {
    const lines = bulkValues(queries, bulkLimits, x, (j) => j);
    if (!Array.isArray(lines)) return true;
    for (const key of keyers) {
      for (const line of lines) if (key(line) !== key(Buffer.from(line))) return false;
    }
    return true;
  }), { numRuns: 300 });
  t.pass('every entry');
});

// -- keys that differ hash apart by construction --------------------------

/** Every string of at most `max` units over `alphabet`. */
function strings(alphabet: string[], max: number): string[] {
  let level = [''];
  const all = [''];
  for (let n = 1; n <= max; n++) {
    level = level.flatMap((s) => alphabet.map((c) => s + c));
    all.push(...level);
  }
  return all;
}

/** Fails the test at the first two inputs with one key. */
function distinct(t: Test, what: string, inputs: Iterable<[string, string]>): void {
  const seen = new Map<string, string>();
  let n = 0;
  for (const [key, input] of inputs) {
    n++;
    const other = seen.get(key);
    if (other !== undefined && other !== input) {
      t.fail(`${what}: ${other} and ${input} have one key`);
      return;
    }
    seen.set(key, input);
  }
  t.pass(`${what}: ${n} keys, all distinct`);
}

// Units that make a packed pair look like a part's end (0x80000000 | length),
// the absent field's mark (0xffffffff), NUL, and surrogates (a pair, and lone).
const UNITS = ['a', '\0', '\u0001', '\u0002', '\u8000', '\uffff', '\ud800', '\udc00'];

t.test('ip, userAgent and query: no two of them alike', async (t) => {
  const key = keyer(['ip', 'userAgent', 'query']);
  const empty = Buffer.from('{}');
  const three = strings(UNITS, 2);
  distinct(t, 'three parts of up to 2 units', (function* () {
    for (const a of three) for (const b of three) for (const c of three) yield [key(empty, a, b, c), JSON.stringify([a, b, c])];
  })());
  const two = strings(UNITS, 3);
  const uaq = keyer(['userAgent', 'query']);
  distinct(t, 'two parts of up to 3 units', (function* () {
    for (const a of two) for (const b of two) yield [uaq(empty, '', a, b), JSON.stringify([a, b])];
  })());
  t.not(uaq(empty, '', 'ab', 'c'), uaq(empty, '', 'a', 'bc'), '["ab","c"] and ["a","bc"]');
  t.not(uaq(empty, '', 'ab', ''), uaq(empty, '', 'ab\0', ''), 'a trailing NUL');
  t.not(uaq(empty, '', '\ud83d\ude00', ''), uaq(empty, '', '\ude00\ud83d', ''), 'a surrogate pair and its halves swapped');
  // Units that differ only in their top bit (b, U+8062), at two places: a
  // hash step that takes a unit into its word's top bit (bit 31) lets the
  // two differences cancel, whatever the seed.
  t.not(uaq(empty, '', 'abc\u8064', ''), uaq(empty, '', 'a\u8062cd', ''), 'User-Agents apart only in two units\' top bits');
  t.not(uaq(empty, '', '', 'x=\u8061b'), uaq(empty, '', '', 'x=a\u8062'), 'queries apart so');
  t.not(key(empty, '1.2.3.4', 'a\u8062', ''), key(empty, '1.2.3.4', 'ab', '\u8061'), 'across parts too');
});

t.test('Values fields: absent, null, empty and any bytes, no two alike', async (t) => {
  // Lines as the converter writes them: each value is "..." or null, or absent.
  const texts = ['a', '\0', '\u0001', '\u0080', '"', '\\', 'é'];
  const vals: (string | null | undefined)[] = [undefined, null, ...strings(texts, 3)];
  const line = (a: string | null | undefined, b: string | null | undefined): Buffer => {
    const o: Record<string, string | null> = {};
    if (a !== undefined) o.a = a;
    if (b !== undefined) o.b = b;
    return Buffer.from(JSON.stringify(o));
  };
  const key = keyer(['a', 'b']);
  distinct(t, 'two fields', (function* () {
    for (const a of vals) for (const b of vals) yield [key(line(a, b)), JSON.stringify([a ?? '<absent>', b ?? '<absent>'])];
  })());
  const ip = keyer(['ip', 'a']);
  t.not(ip(line('', undefined), '1'), ip(line(null, undefined), '1'), 'empty is not null');
  t.not(ip(line(undefined, undefined), '1'), ip(line(null, undefined), '1'), 'absent is not null');
  t.not(ip(line(undefined, undefined), '1'), ip(line('', undefined), '1'), 'absent is not empty');
});

t.test('Hash64: values of any bytes and absent fields, in two or three parts, no two alike', async (t) => {
  const B = [0x00, 0x01, 0x02, 0x03, 0x80, 0xff];
  const all: number[][] = [];
  let level: number[][] = [[]];
  for (let n = 1; n <= 3; n++) {
    level = level.flatMap((s) => B.map((c) => [...s, c]));
    all.push(...level);
  }
  const h = new Hash64();
  // As key.ts feeds a Line's fields: a value (never empty: its JSON has two
  // bytes at least), or the absent field's mark.
  const of = (parts: (number[] | null)[]): string => {
    h.begin();
    for (const p of parts) {
      if (p === null) h.absent();
      else h.bytes(Uint8Array.from(p));
    }
    h.end();
    return `${h.hi}:${h.lo}`;
  };
  const values = [null, ...all];
  const small = [null, ...all.filter((p) => p.length <= 2)];
  // Several fixed seeds: a weakness of the mixing shows under some seeds only.
  for (let i = 0; i < 6; i++) {
    seedHash(Uint8Array.from({ length: 8 }, (_, k) => (i * 131 + k * 29 + ((i * k) ^ 0x5a)) & 255));
    distinct(t, `seed ${i}: two parts of up to 3 bytes, or absent`, (function* () {
      for (const a of values) for (const b of values) yield [of([a, b]), JSON.stringify([a, b])];
    })());
    if (i < 2) {
      distinct(t, `seed ${i}: three parts of up to 2 bytes, or absent`, (function* () {
        for (const a of small) for (const b of small) for (const c of small) yield [of([a, b, c]), JSON.stringify([a, b, c])];
      })());
    }
  }
  seedHash(randomBytes(8));
  t.not(of([[0, 0, 0, 0x80, 0, 0, 0, 0]]), of([[0, 0, 0, 0, 0, 0, 0, 0x80]]), 'bytes apart in two top bits');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(), fc.nat(), (b, x, y) => {
    const s = b.length === 0 ? 0 : x % (b.length + 1);
    const e = s + (b.length === 0 ? 0 : y % (b.length - s + 1));
    h.begin().bytes(b, s, e).end();
    const range = `${h.hi}:${h.lo}`;
    h.begin().bytes(b.slice(s, e)).end();
    return range === `${h.hi}:${h.lo}`;
  }), { numRuns: 5000 });
});

t.test('a body: the same bytes in any chunks are one key; other bytes another', async (t) => {
  const state = new DedupState(new Map(), false);
  const d = state.of('f', { key: ['ip', 'body', 'pv_id'], windowMs: 60_000, maxKeys: 1024 } as DedupConfig)!;
  const line = Buffer.from('{"pv_id":"1"}');
  const keyOf = (chunks: Uint8Array[]): string => {
    const hit = state.post(d, '10.0.0.1', '', '');
    for (const c of chunks) hit.chunk(c);
    const out = { hi: 0, lo: 0 };
    hit.keyOf(line, out);
    return `${out.hi}:${out.lo}`;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 30 }), fc.array(fc.nat(30)), (body, cuts) => {
    const at = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let from = 0;
    for (const c of at) { chunks.push(body.slice(from, c)); from = c; }
    chunks.push(body.slice(from));
    return keyOf(chunks) === keyOf([body]) && keyOf([body]) !== keyOf([body, Uint8Array.of(0)]);
  }), { numRuns: 2000 });
  t.pass('chunking does not matter, a trailing NUL does');
});
