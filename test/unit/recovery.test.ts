// The pure parts of recovery: the day-file index, day spans across DST,
// the delivery watermark, the partition merge, and loss windows.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import type { Flavor } from '../../src/flavor.js';
import fc from 'fast-check';
import { appendIndex, batchTimes, byteRanges, decodeEntries, encodeEntries, indexMismatch, indexTime, readIndex } from '../../src/file/day-index.js';
import { daySpan, daysBetween, isDay, parseTime } from '../../src/day.js';
import { LossTracker, readLossWindows } from '../../src/losses.js';
import { mergeByTime } from '../../src/recovery/merge.js';
import { Watermark } from '../../src/recovery/watermark.js';

t.test('index entries: 16 bytes each, little-endian; a trailing partial entry is ignored', async (t) => {
  const buf = encodeEntries([{ time: 1_764_460_800_123, offset: 0 }, { time: 1_764_460_800_200, offset: 4096 }]);
  t.equal(buf.length, 32);
  t.equal(buf.readBigInt64LE(0), 1_764_460_800_123n);
  t.equal(buf.readBigInt64LE(24), 4096n);
  t.same(decodeEntries(Buffer.concat([buf, Buffer.alloc(7)])), [{ time: 1_764_460_800_123, offset: 0 }, { time: 1_764_460_800_200, offset: 4096 }]);
  const dir = mkdtempSync(join(tmpdir(), 'idx-'));
  t.equal(await readIndex(join(dir, 'none.idx')), null);
  await appendIndex(join(dir, 'a.idx'), [{ time: 1, offset: 0 }]);
  await appendIndex(join(dir, 'a.idx'), [{ time: 2, offset: 10 }]);
  t.same(await readIndex(join(dir, 'a.idx')), [{ time: 1, offset: 0 }, { time: 2, offset: 10 }]);
});

t.test('a time range maps to whole batches: at most one extra batch at each end', async (t) => {
  const e = [{ time: 100, offset: 0 }, { time: 200, offset: 50 }, { time: 300, offset: 90 }, { time: 400, offset: 140 }];
  t.same(byteRanges(e, 250, 350, 200), [{ start: 50, end: 140 }], 'the batch begun at 200 may hold Lines of 250');
  t.same(byteRanges(e, 200, 300, 200), [{ start: 0, end: 140 }], 'a batch begun at 200 may follow Lines of 200 in the one before');
  t.same(byteRanges(e, 0, 50, 200), [], 'before everything: nothing');
  t.same(byteRanges(e, 500, 600, 200), [{ start: 140, end: 200 }], 'after the last entry: up to the end of the file');
  t.same(byteRanges([], 1, 2, 77), [{ start: 0, end: 77 }], 'no index: the whole file');
  t.same(byteRanges([{ time: 300, offset: 40 }], 100, 200, 77), [{ start: 0, end: 40 }], 'bytes before the first entry arrived no later than it');
  const at = batchTimes(e, -1);
  t.same([0, 49, 50, 120, 150].map(at), [100, 100, 200, 300, 400]);
  t.same([0, 10].map(batchTimes([{ time: 300, offset: 5 }], -1)), [300, 300], 'before the first entry: its time');
  t.same(batchTimes([], 7)(0), 7, 'no entry: the time given for unknown');
});

t.test('an index that steps back in time (a clock step, a late Line) loses no batch', async (t) => {
  // The third batch begins before the second: the second's Lines have no upper bound.
  const e = [{ time: 100, offset: 0 }, { time: 200, offset: 50 }, { time: 50, offset: 90 }, { time: 300, offset: 140 }];
  t.same(byteRanges(e, 250, 260, 200), [{ start: 50, end: 140 }], 'the batches that may hold Lines of 250..260');
  t.same(byteRanges(e, 60, 70, 200), [{ start: 90, end: 140 }], 'the batch after the step');
  t.same(byteRanges(e, 100, 120, 200), [{ start: 0, end: 50 }, { start: 90, end: 140 }], 'two runs of the file, in order');
  const twoRuns = [{ time: 100, offset: 0 }, { time: 200, offset: 10 }, { time: 300, offset: 20 }, { time: 150, offset: 30 }, { time: 400, offset: 40 }];
  t.same(byteRanges(twoRuns, 160, 170, 50), [{ start: 0, end: 10 }, { start: 30, end: 40 }], 'before and after the step');
  t.equal(indexMismatch(twoRuns, 50), null);
  t.match(indexMismatch(twoRuns, 40), /entry 4 points at byte 40, outside the file \(40 bytes\)/);
  t.match(indexMismatch([{ time: 1, offset: 10 }, { time: 2, offset: 10 }], 50), /entry 1 points at byte 10, not after entry 0's/);
});

t.test('a writer\'s index finds every Line made at its arrival, with POSTs whose bodies came late among them', async (t) => {
  // A model of the file writer: Lines are written in the order they are
  // made, in batches; a GET is made when it arrives, a POST when its body
  // completes, with the arrival time of its headers.
  fc.assert(fc.property(
    fc.array(fc.record({ gap: fc.nat(5), post: fc.boolean(), late: fc.nat(400), cut: fc.boolean() }), { minLength: 1, maxLength: 60 }),
    fc.nat(1000), fc.nat(100),
    (events, a, width) => {
      let now = 1000;
      let offset = 0;
      let writtenBefore = 0;
      let batch: { arrival: number }[] = [];
      const lines: { arrival: number; made: number; start: number }[] = [];
      const entries: { time: number; offset: number }[] = [];
      const flush = (): void => {
        if (batch.length === 0) return;
        entries.push({ time: indexTime(batch[0]!.arrival, writtenBefore), offset });
        for (const l of batch) {
          writtenBefore = Math.max(writtenBefore, l.arrival);
          offset += 10;
        }
        batch = [];
      };
      for (const ev of events) {
        now += ev.gap;
        const arrival = ev.post ? now - ev.late : now;
        lines.push({ arrival, made: now, start: offset + batch.length * 10 });
        batch.push({ arrival });
        if (ev.cut) flush();
      }
      flush();
      for (let i = 1; i < entries.length; i++) if (entries[i]!.time < entries[i - 1]!.time) return false; // never steps back
      const from = a + 600;
      const to = from + width;
      const ranges = byteRanges(entries, from, to, offset);
      const inRanges = (at: number): boolean => ranges.some((r) => r.start <= at && at < r.end);
      // Every Line that arrived in [from, to] and was made by `to`: every GET, and each POST by when its body came.
      return lines.every((l) => !(l.arrival >= from && l.made <= to) || inRanges(l.start));
    }), { seed: Number(process.env.FC_SEED ?? Date.now() % 1e9), numRuns: 2000 });
  t.pass('every generated case held (fast-check throws, with its seed, on the first that does not)');
});

t.test('days in a zone, across DST changes', async (t) => {
  t.ok(isDay('2026-03-29'));
  t.notOk(isDay('2026-02-30'));
  t.notOk(isDay('2026-3-29'));
  // Europe/Athens: spring forward on 2026-03-29 (23 h), fall back on 2026-10-25 (25 h).
  const spring = daySpan('2026-03-29', 'Europe/Athens');
  t.equal(new Date(spring.first).toISOString(), '2026-03-28T22:00:00.000Z');
  t.equal(new Date(spring.last).toISOString(), '2026-03-29T20:59:59.999Z');
  const fall = daySpan('2026-10-25', 'Europe/Athens');
  t.equal(new Date(fall.first).toISOString(), '2026-10-24T21:00:00.000Z');
  t.equal(new Date(fall.last).toISOString(), '2026-10-25T21:59:59.999Z');
  t.same(daysBetween(Date.parse('2026-03-28T21:59:59Z'), Date.parse('2026-03-29T21:00:00Z'), 'Europe/Athens'),
    ['2026-03-28', '2026-03-29', '2026-03-30']);
  t.equal(parseTime('2026-03-29T01:00:00+03:00'), Date.parse('2026-03-28T22:00:00Z'));
  t.equal(parseTime('1774735200000'), 1774735200000);
  t.ok(Number.isNaN(parseTime('2026-03-29T01:00:00')), 'a time without a zone is refused');
  t.ok(Number.isNaN(parseTime('yesterday')));
  // Date.parse would roll these over (2026-02-30 → March 2) or overflow a Date.
  for (const bad of ['2026-02-30T10:00:00Z', '2026-13-01T00:00:00Z', '2026-03-29T24:00:00Z', '2026-03-29T10:60:00Z',
    '2026-03-29T10:00:60Z', '2026-03-29T10:00:00+24:00', '99999999999999999']) {
    t.ok(Number.isNaN(parseTime(bad)), `${bad} is refused`);
  }
  t.equal(parseTime('2028-02-29T23:59:59.999Z'), Date.parse('2028-02-29T23:59:59.999Z'), 'a leap day is a day');
  t.equal(parseTime('8640000000000000'), 8.64e15, 'the last instant a Date holds');
});

t.test('watermark: the longest delivered prefix, stopped for good by a failure', async (t) => {
  const w = new Watermark();
  const s = [10, 20, 30, 40].map((offset) => w.push({ day: 'd', offset }));
  t.same(s, [0, 1, 2, 3]);
  t.notOk(w.settle(1, true), 'out of order: not yet');
  t.equal(w.position, null);
  t.ok(w.settle(0, true));
  t.same(w.position, { day: 'd', offset: 20 });
  t.notOk(w.settle(2, false));
  t.notOk(w.settle(3, true));
  t.same(w.position, { day: 'd', offset: 20 }, 'a failed Line is produced again on resume');
});

t.test('partitions merge by timestamp, each partition in its own order, lower partition first on ties', async (t) => {
  const m = (ts: number, v: string) => ({ timestamp: ts, value: Buffer.from(v) });
  const out = mergeByTime([[m(1, 'a'), m(3, 'b'), m(3, 'c')], [m(2, 'x'), m(3, 'y'), m(5, 'z')]]);
  t.same(out.map((x) => x.value.toString()), ['a', 'x', 'b', 'c', 'y', 'z']);
  t.same(mergeByTime([[m(5, 'a'), m(1, 'b')]]).map((x) => x.value.toString()), ['a', 'b'], 'one partition: as it is');
});

t.test('loss windows: extended by drops, closed after a quiet spell, logged once and appended', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'losses-'));
  const logged: { lossWindow?: unknown; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { logged.push(JSON.parse(s)); } });
  let now = 1_000_000;
  const tracker = new LossTracker({
    stateDir, configFile: '/etc/scratchd/config.json', log, now: () => now,
    timeZones: new Map([['gr', 'Europe/Athens']]),
  });
  const T = Date.parse('2026-11-30T10:00:00.000Z');
  tracker.listener('kafka', 'gr', T, 'queue_full');
  now += 5000;
  tracker.listener('kafka', 'gr', T + 5000, 'queue_full', 3);
  tracker.listener('kafka', 'gr', T + 4000, 'delivery_failed');
  tracker.listener('file', 'gr', T + 10, 'queue_full');
  t.equal(tracker.snapshot().open.length, 2);
  now += 9999;
  t.same(tracker.closeQuiet(), [], 'not quiet for 10 s yet');
  now += 1;
  const closed = tracker.closeQuiet();
  t.equal(closed.length, 2);
  const k = closed.find((w) => w.backend === 'kafka')!;
  t.match(k, {
    id: 'kafka-gr-20261130T100000.000Z', flavor: 'gr', from: '2026-11-30T10:00:00.000Z', to: '2026-11-30T10:00:05.000Z',
    count: 5, reasons: { queue_full: 4, delivery_failed: 1 },
    command: 'scratchd replay --config /etc/scratchd/config.json --flavor gr --from 2026-11-30T10:00:00.000Z --to 2026-11-30T10:00:05.000Z',
  });
  const f = closed.find((w) => w.backend === 'file')!;
  t.equal(f.command, `scratchd rebuild --config /etc/scratchd/config.json --flavor gr --day 2026-11-30 --out ${join(stateDir, 'rebuilt')}`);
  t.same(readLossWindows(stateDir).map((w) => w.id).sort(), closed.map((w) => w.id).sort(), 'appended to losses.jsonl');
  t.equal(logged.filter((l) => l.lossWindow !== undefined).length, 2, 'each logged once');
  t.equal(tracker.closeQuiet().length, 0);
  tracker.listener('kafka', 'gr', T, 'queue_full');
  const again = tracker.closeAll();
  t.equal(again.length, 1, 'shutdown closes what is open');
  t.equal(again[0]!.id, 'kafka-gr-20261130T100000.000Z-2', 'ids stay unique');
  t.equal(readFileSync(join(stateDir, 'losses.jsonl'), 'utf8').trim().split('\n').length, 3);
  t.same(tracker.windowsTotal().find((w) => w.backend === 'kafka'), { backend: 'kafka', flavor: 'gr', count: 2 });
});

t.test('losses.jsonl: a window after a partial last line (an append cut short) is still found', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'losses-torn-'));
  const log = pino({ level: 'silent' });
  let now = 1_000_000;
  const tracker = new LossTracker({ stateDir, configFile: '/c.json', log, now: () => now, timeZones: new Map([['gr', 'UTC']]) });
  const T = Date.parse('2026-11-30T10:00:00.000Z');
  tracker.listener('kafka', 'gr', T, 'queue_full');
  const [first] = tracker.closeAll();
  // The next append was cut short by a full disk: half a window, no newline.
  const file = join(stateDir, 'losses.jsonl');
  const whole = readFileSync(file, 'utf8');
  writeFileSync(file, whole + '{"id":"kafka-gr-2026113');
  now += 60_000;
  tracker.listener('kafka', 'gr', T + 60_000, 'queue_full');
  const [second] = tracker.closeAll();
  t.same(readLossWindows(stateDir).map((w) => w.id), [first!.id, second!.id], 'both whole windows are read back');
  t.match(readFileSync(file, 'utf8'), /\n\{"id":"kafka-gr-2026113\n\{"id":"kafka-gr-20261130T100100/, 'the fragment stays a line of its own');
});

t.test('loss windows: after a reload, rebuild commands use the flavor\'s new time zone', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'losses-zone-'));
  const tracker = new LossTracker({ stateDir, configFile: '/c.json', log: pino({ level: 'silent' }), timeZones: new Map([['gr', 'UTC']]) });
  const T = Date.parse('2026-11-30T12:00:00.000Z'); // 2026-12-01 in Kiritimati (UTC+14)
  tracker.listener('file', 'gr', T, 'queue_full');
  t.match(tracker.closeAll()[0]!.command, /--day 2026-11-30 /, 'UTC at start-up');
  tracker.useFlavors([{ name: 'gr', timeZone: 'Pacific/Kiritimati' } as Flavor, { name: 'tr', timeZone: 'Europe/Istanbul' } as Flavor]);
  tracker.listener('file', 'gr', T, 'queue_full');
  tracker.listener('file', 'tr', Date.parse('2026-11-30T22:30:00.000Z'), 'queue_full');
  const [gr, tr] = tracker.closeAll();
  t.match(gr!.command, /--flavor gr --day 2026-12-01 /, 'the reloaded zone names the day');
  t.match(tr!.command, /--flavor tr --day 2026-12-01 /, 'a flavor added by the reload has its own zone, not UTC');
});

t.test('a Kafka window runs on to its last drop: a slow POST lost at its end is written, and replayed, after its arrival', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'losses-post-'));
  const T = Date.parse('2026-11-30T10:00:00.000Z');
  let now = T;
  const tracker = new LossTracker({ stateDir, configFile: '/c.json', log: pino({ level: 'silent' }), now: () => now, timeZones: new Map([['gr', 'UTC']]) });
  tracker.listener('kafka', 'gr', T, 'queue_full');
  now = T + 400; // a POST whose headers came at T + 10, its body 390 ms later
  tracker.listener('kafka', 'gr', T + 10, 'queue_full');
  tracker.listener('file', 'gr', T + 10, 'queue_full');
  const closed = tracker.closeAll();
  t.match(closed.find((w) => w.backend === 'kafka'), { from: '2026-11-30T10:00:00.000Z', to: '2026-11-30T10:00:00.400Z' });
  t.match(closed.find((w) => w.backend === 'file'), { from: '2026-11-30T10:00:00.010Z', to: '2026-11-30T10:00:00.010Z' }, 'a file window: arrival times');
});
