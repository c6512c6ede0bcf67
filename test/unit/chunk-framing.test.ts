// The pieces of a body, however uWS cuts them: the body reader keeps exactly
// their bytes in memory that follows the bytes (never a buffer per piece),
// and the chunked-body tail sees CRLF at the end of the data exactly when the
// data so far ends with it, across any cut. Properties, with fast-check.
// And the framing rules, header copy by copy.
import fc from 'fast-check';
import t from 'tap';
import { Body, BodyBudget } from '../../src/http/body.js';
import { ChunkTail } from '../../src/http/chunked.js';
import { framing } from '../../src/http/framing.js';
import type { HttpRequest } from 'uWebSockets.js';

/** Bytes cut into pieces at `cuts` (empty pieces included, as uWS may hand over). */
function cut(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const at = [0, ...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length];
  return at.slice(1).map((end, i) => bytes.subarray(at[i], end));
}

const data = fc.uint8Array({ maxLength: 3000 });
const crlfish = fc.array(fc.constantFrom(0x0d, 0x0a, 0x61), { maxLength: 40 }).map((a) => Uint8Array.from(a));

t.test('every cut of a body is read back whole; memory held is at most twice the bytes, never over the limit', async (t) => {
  fc.assert(fc.property(data, fc.array(fc.nat(), { maxLength: 30 }), fc.integer({ min: 1, max: 4096 }), (bytes, cuts, limit) => {
    const budget = new BodyBudget(1 << 30);
    const body = new Body(budget, limit, null);
    const pieces = cut(bytes, cuts);
    let size = 0;
    for (let i = 0; i < pieces.length; i++) {
      const last = i === pieces.length - 1;
      const r = body.add(pieces[i]!, last);
      size += pieces[i]!.length;
      if (size > limit) {
        if (r !== 'body_too_large') throw new Error(`${size} bytes over ${limit} taken`);
        body.release();
        return budget.held === 0;
      }
      if (r !== null) throw new Error(`refused: ${r}`);
      if (!last && budget.held > Math.min(limit, Math.max(1024, 2 * size))) throw new Error(`${budget.held} held for ${size} bytes`);
    }
    if (Buffer.compare(body.bytes(), bytes) !== 0) throw new Error('bytes differ');
    body.release();
    return budget.held === 0;
  }), { numRuns: 500 });
  t.pass('every generated case held (fast-check throws, with its seed, on the first that does not)');
});

t.test('a Content-Length caps what is held; past the budget: busy, and nothing counted for it', async (t) => {
  const budget = new BodyBudget(3000);
  const a = new Body(budget, 65536, 1500);
  t.equal(a.add(new Uint8Array(10), false), null);
  t.equal(budget.held, 1024);
  t.equal(a.add(new Uint8Array(1100), false), null);
  t.equal(budget.held, 1500, 'grown to the declared length, not past it');
  const b = new Body(budget, 65536, null);
  t.equal(b.add(new Uint8Array(1), false), null);
  t.equal(budget.held, 2524);
  t.equal(b.add(new Uint8Array(1024), false), 'busy', 'growing to 2048 would pass the budget');
  t.equal(budget.held, 2524, 'the refused growth is not counted');
  t.equal(b.add(new Uint8Array(5000), true), null, 'the last piece is taken: it is not held between reads');
  b.release();
  a.release();
  a.release();
  t.equal(budget.held, 0, 'released once each, however often called');
});

t.test('a chunked body\'s tail ends with CRLF (or LF CR) exactly when its data does, however it is cut', async (t) => {
  fc.assert(fc.property(crlfish, fc.array(fc.nat(), { maxLength: 20 }), (bytes, cuts) => {
    const tail = new ChunkTail();
    let seen = 0;
    for (const p of cut(bytes, cuts)) {
      const ends = tail.endsWithCrlf(p);
      seen += p.length;
      const so = bytes.subarray(0, seen);
      const end = so.length >= 2 ? `${so[so.length - 2]},${so[so.length - 1]}` : '';
      const want = end === '13,10' || end === '10,13';
      if (ends !== want) return false;
    }
    return true;
  }), { numRuns: 2000 });
  t.pass('every generated case held (fast-check throws, with its seed, on the first that does not)');
});

t.test('framing: every Content-Length and Transfer-Encoding copy counts, as RFC 9112 §6 reads them', async (t) => {
  const req = (headers: [string, string][]) => ({
    forEach: (cb: (k: string, v: string) => void) => headers.forEach(([k, v]) => cb(k, v)),
    getHeader: (k: string) => headers.find(([h]) => h === k)?.[1] ?? '',
  }) as unknown as HttpRequest;
  const cases: [[string, string][], ReturnType<typeof framing>][] = [
    [[], { length: null, chunked: false }],
    [[['content-length', '3']], { length: 3, chunked: false }],
    [[['content-length', '3'], ['content-length', '03']], { length: 3, chunked: false }],
    [[['content-length', '3'], ['content-length', '58']], 'framing'],
    [[['content-length', '']], 'framing'],
    [[['content-length', '3'], ['content-length', '']], 'framing'],
    [[['content-length', '3, 3']], 'framing'],
    [[['transfer-encoding', 'chunked']], { length: null, chunked: true }],
    [[['transfer-encoding', 'Chunked ']], { length: null, chunked: true }],
    [[['transfer-encoding', 'chunked'], ['content-length', '3']], 'framing'],
    [[['transfer-encoding', 'identity']], 'framing'],
    [[['transfer-encoding', '']], 'framing'],
    [[['transfer-encoding', 'chunkedX']], 'framing'],
    [[['transfer-encoding', 'chunked, gzip']], 'framing'],
    [[['transfer-encoding', 'chunked'], ['transfer-encoding', 'chunked']], 'framing'],
    [[['transfer-encoding', 'gzip, chunked']], 'transfer_coding'],
    [[['transfer-encoding', 'gzip'], ['transfer-encoding', 'chunked']], 'transfer_coding'],
  ];
  for (const [headers, want] of cases) t.same(framing(req(headers)), want, JSON.stringify(headers));
});
