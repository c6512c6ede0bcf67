// The spool's promises where its writer, reader and ledger meet, and where
// the acknowledgement window is at its edges: counters exact under
// duplicate, unknown and out-of-order reports across the window's
// compactions; a rewind over acknowledged records; a damaged record that
// was acknowledged; a close while a write is under way; segments unlinked
// while a read is under way; the replay's resume position over thousands of
// reports.
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeLogger } from '../../src/log.js';
import { readLedger } from '../../src/kafka/spool/ledger.js';
import { HEADER_BYTES, type SpoolRecord } from '../../src/kafka/spool/record.js';
import { Spool, type SpoolConfig, type SpoolDropReason } from '../../src/kafka/spool/spool.js';
import { Watermark } from '../../src/recovery/watermark.js';
import { installFsFaults } from '../helpers/fs-faults.js';

const log = makeLogger('silent');
const faults = await installFsFaults();

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'spool-split-'));
  t.teardown(() => {
    faults.reset();
    rmSync(d, { recursive: true, force: true });
  });
  faults.reset();
  faults.under(d);
  return d;
}

async function openSpool(d: string, over: Partial<SpoolConfig> = {}) {
  const drops: string[] = [];
  const s = new Spool({ enabled: true, dir: d, segmentBytes: 1024, fsyncMs: 3_600_000, maxBytes: 1 << 30, minFreeBytes: 0, ...over },
    log, (reason: SpoolDropReason, _flavor, time) => drops.push(`${reason}:${time}`));
  await s.open();
  return { s, drops };
}

const line = (i: number): Buffer => Buffer.from(JSON.stringify({ id: String(i), pad: 'x'.repeat(100) }));
const segs = (d: string): string[] => readdirSync(d).filter((n) => n.endsWith('.seg')).sort();
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function readAll(s: Spool): Promise<SpoolRecord[]> {
  const all: SpoolRecord[] = [];
  for (let rs = await s.read(500); rs.length > 0; rs = await s.read(500)) all.push(...rs);
  return all;
}

/** A fixed pseudo-random order, so a failure repeats. */
function shuffled<T>(a: T[], seed: number): T[] {
  const b = [...a];
  let x = seed;
  for (let i = b.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [b[i], b[j]] = [b[j]!, b[i]!];
  }
  return b;
}

t.test('counters exact under duplicate, unknown and out-of-order acks across the window\'s compactions; a rewind hands out only the one left', async (t) => {
  const d = dir(t);
  const { s, drops } = await openSpool(d, { segmentBytes: 64 << 10 });
  const n = 3000;
  let taken = 0;
  for (let i = 1; i <= n; i++) if (s.append('gr', i, line(i))) taken++;
  t.equal(taken, n);
  await s.flush();
  const out = await readAll(s);
  t.same(out.map((r) => r.seq), Array.from({ length: n }, (_, i) => i + 1), 'every record handed out once, in order');
  t.equal(s.unackedOut(), n);
  const held = 1500;
  for (const r of shuffled(out.filter((r) => r.seq !== held), 11)) {
    s.ack(r.seq);
    s.ack(r.seq); // a duplicate report
  }
  s.ack(0);
  s.ack(n + 7); // never handed out
  t.equal(s.drained, n - 1, 'each record counted drained once');
  t.equal(s.records, n - (held - 1), 'the watermark stops below the one not acknowledged');
  t.equal(s.unackedOut(), 1);
  t.equal(s.oldest(), held, 'the oldest is the one waiting');
  await s.flush();
  t.same(readLedger(d), { acked: held - 1 }, 'the ledger never passes an unacknowledged record');
  s.rewind();
  const again = await readAll(s);
  t.same(again.map((r) => r.seq), [held], 'after a rewind only the unacknowledged one goes out again');
  s.ack(held);
  s.ack(held);
  t.equal(s.drained, n);
  t.equal(s.records, 0);
  t.equal(s.spilled, n);
  t.ok(s.isEmpty());
  await s.flush();
  t.same(readLedger(d), { acked: n });
  t.same(segs(d), [], 'every segment unlinked');
  t.same(drops, []);
  await s.close();
});

t.test('a record acknowledged before a rewind, then found damaged, is counted once; an unacknowledged damaged one is counted out', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d);
  for (let i = 1; i <= 20; i++) s.append('gr', i, line(i));
  await s.flush();
  const first = await readAll(s);
  t.equal(first.length, 20);
  for (const seq of [4, 3, 6]) s.ack(seq);
  // Bit flips in the bodies of records 4 and 6 (acknowledged) and 7 (not), in the first segment.
  const name = segs(d)[0]!;
  const buf = readFileSync(join(d, name));
  const starts: number[] = [];
  for (let at = 0; at < buf.length; at += HEADER_BYTES + buf.readUInt32LE(at)) starts.push(at);
  t.ok(starts.length >= 7, `${starts.length} records in the first segment`);
  const fd = openSync(join(d, name), 'r+');
  for (const k of [3, 5, 6]) writeSync(fd, Buffer.from([0x5a]), 0, 1, starts[k]! + HEADER_BYTES + 30);
  closeSync(fd);
  s.rewind();
  const again = await readAll(s);
  t.same(again.map((r) => r.seq), [1, 2, 5, ...Array.from({ length: 13 }, (_, i) => i + 8)], 'neither the acknowledged nor the damaged go out');
  t.equal(s.quarantined, 3);
  for (const r of again) s.ack(r.seq);
  t.equal(s.drained, 19, 'the damaged unacknowledged one is not counted drained');
  t.equal(s.records, 0, 'nor left in records');
  t.ok(s.isEmpty());
  await s.flush();
  t.same(readLedger(d), { acked: 20 });
  t.same(segs(d), []);
  await s.close();
});

t.test('close while a write is under way: what was taken before it returned is on disk; an append after it is dropped as spool_error', async (t) => {
  const d = dir(t);
  const { s, drops } = await openSpool(d);
  for (let i = 1; i <= 5; i++) s.append('gr', i, line(i));
  const go = faults.holdNth('write', 1);
  await tick();
  await tick();
  const closing = s.close();
  t.ok(s.append('gr', 6, line(6)), 'taken while the close waits for the write');
  go();
  await closing;
  t.notOk(s.append('gr', 7, line(7)));
  t.same(drops, ['spool_error:7']);
  t.equal(s.drops.spool_error, 1);
  t.equal(s.records, 6);
  t.equal(s.spilled, 6);
  const { s: s2 } = await openSpool(d);
  t.equal(s2.records, 6);
  const got = await readAll(s2);
  t.same(got.map((r) => r.time), [1, 2, 3, 4, 5, 6], 'every taken record, in order');
  for (const r of got) s2.ack(r.seq);
  await s2.close();
  t.same(readLedger(d), { acked: 6 });
  t.same(segs(d), []);
});

t.test('delivered segments unlinked while a read is under way: the read goes on from the same record, nothing skipped or repeated', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d);
  for (let i = 1; i <= 30; i++) s.append('gr', i, line(i));
  await s.flush();
  t.ok(segs(d).length >= 4, `${segs(d).length} segments`);
  const first = await s.read(3);
  for (const r of first) s.ack(r.seq);
  const opened = faults.holdNth('open', 1); // the read's open of the next segment waits
  const reading = s.read(100);
  await tick();
  await tick();
  const flushing = s.flush(); // the ledger, then the unlink of what is delivered, behind the read
  await tick();
  opened();
  const rest = await reading;
  await flushing;
  t.same(rest.map((r) => r.time), Array.from({ length: 27 }, (_, i) => i + 4));
  for (const r of shuffled(rest, 5)) s.ack(r.seq);
  await s.flush();
  t.same(segs(d), []);
  t.ok(s.append('gr', 31, line(31)));
  await s.flush();
  const tail = await readAll(s);
  t.same(tail.map((r) => r.seq), [31], 'the sequence goes on after the spool emptied');
  s.ack(31);
  t.equal(s.drained, 31);
  t.equal(s.records, 0);
  t.ok(s.isEmpty());
  await s.close();
});

t.test('replay resume position over thousands of reports in any order: duplicates and unknown keys move nothing; a failure holds it', async (t) => {
  const w = new Watermark({ day: '2026-01-01', offset: 5 });
  const n = 10_000;
  const seqs = Array.from({ length: n }, (_, i) => w.push({ day: '2026-01-02', offset: (i + 1) * 10 }));
  t.same(seqs.slice(0, 3), [0, 1, 2]);
  const failAt = 7000;
  let moves = 0;
  let dupMoved = 0;
  for (const q of shuffled(seqs, 3)) {
    if (w.settle(q, q !== failAt)) moves++;
    if (w.settle(q, true)) dupMoved++; // a duplicate report
  }
  t.equal(dupMoved, 0, 'a duplicate report never moves it');
  t.notOk(w.settle(-1, true));
  t.notOk(w.settle(n, true), 'a key never pushed');
  t.ok(moves > 0);
  t.same(w.position, { day: '2026-01-02', offset: failAt * 10 }, 'the position stops right before the failed Line');
  const more = w.push({ day: '2026-01-03', offset: 1 });
  t.notOk(w.settle(more, true), 'after a failure nothing moves it');
  t.same(w.position, { day: '2026-01-02', offset: failAt * 10 });
});

t.test('a hand-over after a rewind does not hand out again what Kafka acknowledged from the first hand-over', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d);
  for (let i = 1; i <= 3; i++) s.append('gr', i, line(i));
  // Same turn: nothing written yet, so every record is handed over from RAM.
  t.ok(s.canHandOver());
  t.same(s.handOver().map((r) => r.seq), [1, 2, 3]);
  s.ack(1);
  s.ack(3); // 2 failed: the drainer rewinds
  s.rewind();
  t.ok(s.canHandOver());
  t.same(s.handOver().map((r) => r.seq), [2], 'only the unacknowledged one goes out again');
  s.ack(2);
  t.equal(s.drained, 3, 'each record counted drained once');
  t.equal(s.records, 0);
  await s.flush();
  t.same(await readAll(s), [], 'nothing left to send once written');
  t.ok(s.isEmpty());
  t.same(readLedger(d), { acked: 3 });
  await s.close();
});
