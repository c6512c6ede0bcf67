/**
 * The doubt file (src/kafka/doubt.ts, in-doubt.ts) without a broker: what a
 * shutdown writes, what the next start takes from it, and how two runs'
 * Lines in doubt are merged. The read-back against a real broker is
 * test/system/kafka-in-doubt.test.ts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { DeliveredAhead } from '../../src/kafka/delivered-ahead.js';
import { DOUBT_FILE, fingerprint, Tally, type Doubt } from '../../src/kafka/doubt.js';
import { DELIVERED, FOUND, InDoubt } from '../../src/kafka/in-doubt.js';

const log = pino({ level: 'silent' });
const dirOf = (): string => mkdtempSync(join(tmpdir(), 'scratchd-doubt-'));
const read = (dir: string): Doubt => JSON.parse(readFileSync(join(dir, DOUBT_FILE), 'utf8')) as Doubt;
const line = (id: number, time = 1000 + id): { topic: string; time: number; payload: Buffer } => ({ topic: 'gr', time, payload: Buffer.from(`{"id":"${id}"}`) });

t.test('a tally counts Lines alike one by one', async (t) => {
  const a = new Tally();
  a.add('x'); a.add('x'); a.add('y');
  t.equal(a.size, 3);
  t.ok(a.take('x')); t.ok(a.take('x'));
  t.notOk(a.take('x'), 'no third');
  t.same(a.toJSON(), { y: 1 });
  t.not(fingerprint('gr', 1, Buffer.from('a')), fingerprint('gr', 2, Buffer.from('a')), 'the time is part of it');
  t.not(fingerprint('gr', 1, Buffer.from('a')), fingerprint('tr', 1, Buffer.from('a')), 'the topic is part of it');
});

t.test('shutdown writes the Lines in doubt and each partition\'s last acknowledged offset; nothing in doubt, no file', async (t) => {
  const dir = dirOf();
  const d = new InDoubt(dir, 'web1', {}, log);
  d.noteAcked('gr', 0, 7); d.noteAcked('gr', 0, 5); d.noteAcked('gr', 2, 9); d.noteAcked('tr', 0, 3);
  await d.save([line(1), line(2), line(1)]);
  const f = read(dir);
  t.equal(f.instance, 'web1');
  t.same(f.unsure?.acked, { gr: { 0: 7, 2: 9 } }, 'the highest offset per partition, of the topics in doubt only');
  t.equal(f.unsure?.minTime, 1001);
  t.same(f.unsure?.prints, [line(1), line(2), line(1)].map((l) => fingerprint(l.topic, l.time, l.payload)), 'one print per Line, alike ones twice');
  t.same(f.confirmed, {});
  const quiet = dirOf();
  writeFileSync(join(quiet, DOUBT_FILE), '{}');
  await new InDoubt(quiet, 'web1', {}, log).save([]);
  t.notOk(existsSync(join(quiet, DOUBT_FILE)), 'a clean shutdown removes an old file');
});

t.test('found Lines are skipped once each, then the file goes', async (t) => {
  const dir = dirOf();
  const p = fingerprint('gr', 1001, line(1).payload);
  writeFileSync(join(dir, DOUBT_FILE), JSON.stringify({ version: 1, instance: 'web1', unsure: null, confirmed: { [p]: 2 } }));
  const d = new InDoubt(dir, 'web1', {}, log);
  await d.load();
  await d.confirm(() => false); // nothing to read back
  t.notOk(d.skips('gr', 1002, line(2).payload), 'another Line is sent');
  t.ok(d.skips('gr', 1001, line(1).payload));
  t.ok(existsSync(join(dir, DOUBT_FILE)), 'one still to skip: the file stays');
  t.ok(d.skips('gr', 1001, line(1).payload));
  t.notOk(d.skips('gr', 1001, line(1).payload), 'only as many as were found');
  t.equal(d.found, 2);
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(existsSync(join(dir, DOUBT_FILE)), 'all skipped: the file is removed');
});

t.test('another instance\'s file is not trusted: its Lines are sent again', async (t) => {
  const dir = dirOf();
  writeFileSync(join(dir, DOUBT_FILE), JSON.stringify({ version: 1, instance: 'web2', unsure: null, confirmed: { x: 1 } }));
  const d = new InDoubt(dir, 'web1', {}, log);
  await d.load();
  t.notOk(existsSync(join(dir, DOUBT_FILE)));
  const corrupt = dirOf();
  writeFileSync(join(corrupt, DOUBT_FILE), '{"version":1,');
  const c = new InDoubt(corrupt, 'web1', {}, log);
  await c.load();
  await c.save([]);
  t.notOk(existsSync(join(corrupt, DOUBT_FILE)), 'a torn file is read as none');
});

t.test('a read-back not done by the next shutdown is kept, with the lower bound per partition', async (t) => {
  const dir = dirOf();
  const old: Doubt = { version: 1, instance: 'web1', confirmed: { c: 1 },
    unsure: { minTime: 500, acked: { gr: { 0: 10, 1: 20 }, tr: { 0: 4 } }, prints: ['a'] } };
  writeFileSync(join(dir, DOUBT_FILE), JSON.stringify(old));
  const d = new InDoubt(dir, 'web1', {}, log);
  await d.load(); // the broker never answered: no confirm
  d.noteAcked('gr', 0, 30); d.noteAcked('gr', 2, 40); d.noteAcked('ka', 0, 1);
  await d.save([line(9, 800), { topic: 'ka', time: 900, payload: Buffer.from('k') }]);
  const f = read(dir);
  t.same(f.confirmed, { c: 1 }, 'found before, not skipped yet: kept');
  t.equal(f.unsure?.minTime, 500);
  t.same(f.unsure?.acked, { gr: { 0: 10 }, tr: { 0: 4 }, ka: { 0: 1 } },
    'gr: partition 0 the lower; 1 and 2 unbounded (the other run may have Lines before them); other topics as they were');
  t.same(f.unsure?.prints, ['a', fingerprint('gr', 800, line(9).payload), fingerprint('ka', 900, Buffer.from('k'))]);
});

t.test('a read-back that keeps failing while the producer reaches a broker gives up: the Lines are sent again', async (t) => {
  const dir = dirOf();
  const lines: { msg: string }[] = [];
  const seen = pino({ level: 'info' }, { write: (l: string) => { lines.push(JSON.parse(l) as { msg: string }); } });
  writeFileSync(join(dir, DOUBT_FILE), JSON.stringify({ version: 1, instance: 'web1', confirmed: {},
    unsure: { minTime: 0, acked: { gr: {} }, prints: ['a', 'b'] } }));
  // Nothing listens on port 1: every read-back fails at once.
  const d = new InDoubt(dir, 'web1', { 'metadata.broker.list': '127.0.0.1:1' }, seen,
    { maxMessages: 10, callTimeoutMs: 200, totalTimeoutMs: 1000, retryMinMs: 20 });
  await d.load();
  let stop = false;
  const timer = setTimeout(() => { stop = true; }, 30_000);
  await d.confirm(() => stop, () => true);
  clearTimeout(timer);
  t.notOk(stop, 'it ended by itself');
  t.ok(lines.some((l) => l.msg.startsWith('kafka: Lines in doubt could not be read back')), 'logged');
  t.notOk(existsSync(join(dir, DOUBT_FILE)), 'nothing left in doubt: the file is gone');
  t.notOk(d.skips('gr', 0, Buffer.from('a')), 'nothing skipped');
});

t.test('records delivered above a held watermark: only those above the watermark on disk are kept', async (t) => {
  const a = new DeliveredAhead<string>();
  a.note(3, 'c'); a.note(5, 'e'); a.note(4, 'd'); // reports in any order
  a.passed(4);
  t.same(a.above(4), ['e'], 'the watermark passed 3 and 4');
  t.same(a.above(2), ['e', 'd'], 'a passed one behind a later one is still kept, never above the watermark');
  a.passed(5);
  t.equal(a.size, 0, 'all passed: nothing kept');
  const full = new DeliveredAhead<string>(2);
  full.note(7, 'g'); full.note(8, 'h'); full.note(9, 'i');
  t.same(full.above(6), ['g', 'h'], 'at its bound a note is not kept: that record is sent again');
  t.equal(full.unnoted, 1, 'and counted');
});

t.test('Lines delivered above the watermark at a stop: skipped at the next start, not counted again; merged with those left', async (t) => {
  const dir = dirOf();
  const p1 = fingerprint('gr', 1001, line(1).payload);
  const p2 = fingerprint('gr', 1002, line(2).payload);
  writeFileSync(join(dir, DOUBT_FILE), JSON.stringify({ version: 1, instance: 'web1', unsure: null, confirmed: { [p2]: 1 }, delivered: { [p1]: 1 } }));
  const d = new InDoubt(dir, 'web1', {}, log);
  await d.load();
  await d.confirm(() => false);
  t.equal(d.skips('gr', 1001, line(1).payload), DELIVERED, 'delivered before the stop: skipped, counted then');
  t.equal(d.skips('gr', 1002, line(2).payload), FOUND, 'found by a read-back: skipped, counted now');
  t.equal(d.skips('gr', 1001, line(1).payload), null, 'only as many as were delivered');
  await new Promise((r) => setTimeout(r, 50)); // all skipped: the file goes
  t.notOk(existsSync(join(dir, DOUBT_FILE)));
  await d.save([], [p1, p1, p2]);
  const f = read(dir);
  t.same(f.delivered, { [p1]: 2, [p2]: 1 }, 'one print per record, alike ones twice');
  t.same(f.confirmed, {});
  t.equal(f.unsure, null, 'nothing in doubt');
  const next = new InDoubt(dir, 'web1', {}, log);
  await next.load();
  await next.save([], [fingerprint('gr', 1003, line(3).payload)]);
  t.same(read(dir).delivered, { [p1]: 2, [p2]: 1, [fingerprint('gr', 1003, line(3).payload)]: 1 }, 'not met yet: kept, with this run\'s');
  const old = dirOf();
  writeFileSync(join(old, DOUBT_FILE), JSON.stringify({ version: 1, instance: 'web1', unsure: null, confirmed: { [p1]: 1 } }));
  const o = new InDoubt(old, 'web1', {}, log);
  await o.load();
  t.equal(o.skips('gr', 1001, line(1).payload), FOUND, 'a file without `delivered` reads as none');
});
