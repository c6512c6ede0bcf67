/**
 * The drainer's notes of records delivered above a held watermark
 * (src/kafka/drainer.ts, delivered-ahead.ts) under the reports a missing
 * topic brings, without a broker: a spool that keeps only the contiguous
 * watermark, delivery reports handed to the drainer as librdkafka would,
 * and the doubt file the stop writes, read by the next start.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Kafka from 'node-rdkafka';
import pino from 'pino';
import t from 'tap';
import { installFsFaults } from '../helpers/fs-faults.js';
import { MAX_NOTES } from '../../src/kafka/delivered-ahead.js';
import { DOUBT_FILE, fingerprint, type Doubt } from '../../src/kafka/doubt.js';
import { Drainer } from '../../src/kafka/drainer.js';
import { ERR } from '../../src/kafka/errors.js';
import { DELIVERED, InDoubt } from '../../src/kafka/in-doubt.js';
import type { SpooledRef } from '../../src/kafka/inflight.js';
import type { Messages } from '../../src/kafka/message.js';
import type { SpoolPort } from '../../src/kafka/null-spool.js';
import { Outcomes } from '../../src/kafka/outcomes.js';
import type { Producer } from '../../src/kafka/producer.js';
import type { Spill } from '../../src/kafka/spill.js';
import { readLedger } from '../../src/kafka/spool/ledger.js';
import { Spool } from '../../src/kafka/spool/spool.js';

const faults = await installFsFaults();
const log = pino({ level: 'silent' });
const quiet = (): void => {};

/** The spool's ledger as the drainer sees it: the watermark over contiguous acknowledgements. */
class Ledger {
  acked = 0;
  private readonly done = new Set<number>();
  ack(seq: number): void {
    this.done.add(seq);
    while (this.done.delete(this.acked + 1)) this.acked++;
  }
}

/** A missing topic: librdkafka's verdict, retried within the window, given up on after it. */
let inWindow = true;
const producer = { mayRetry: () => inWindow, noteRefusal: quiet } as unknown as Producer;
const unknown = Object.assign(new Error('Broker: Unknown topic or partition'), { code: ERR.ERR_UNKNOWN_TOPIC_OR_PART }) as unknown as Kafka.LibrdKafkaError;

function drainerOf(dir: string, spool: unknown = new Ledger()): { drainer: Drainer; ledger: Ledger; doubt: InDoubt; outcomes: Outcomes } {
  const doubt = new InDoubt(dir, 'web1', {}, log);
  const outcomes = new Outcomes(producer, quiet);
  const spill = { begin: () => true } as unknown as Spill;
  const drainer = new Drainer(spool as SpoolPort, producer, spill, {} as Messages, outcomes, quiet, 50, doubt);
  return { drainer, ledger: spool as Ledger, doubt, outcomes };
}

const rec = (seq: number, topic: string): SpooledRef => ({ seq, flavor: topic, time: 1_000_000 + seq, topic, payload: Buffer.from(`{"id":"${topic}${seq}"}`) });
const report = (r: SpooledRef): Kafka.DeliveryReport => ({ topic: r.topic, partition: 0, offset: r.seq, key: null, size: r.payload.length, opaque: r } as unknown as Kafka.DeliveryReport);
const printOf = (r: SpooledRef): string => fingerprint(r.topic, r.time, r.payload);

t.test('a missing topic\'s Lines given up on after the window: the notes of the Lines delivered behind them go, and a later window is noted in full', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scratchd-gap-audit-'));
  const { drainer, ledger, doubt, outcomes } = drainerOf(dir);
  // First window: uk's Line holds the watermark, gr's behind it are delivered.
  inWindow = true;
  const uk = rec(1, 'uk');
  drainer.report(unknown, report(uk), uk);
  const grs = Array.from({ length: MAX_NOTES }, (_, i) => rec(2 + i, 'gr'));
  for (const r of grs) drainer.report(null, report(r), r);
  // The window is over: uk's Line is dropped, the watermark passes every gr Line.
  inWindow = false;
  drainer.report(unknown, report(uk), uk);
  t.equal(ledger.acked, 1 + MAX_NOTES, 'the watermark passed them all');
  // Another missing topic later: its Line holds the watermark again, one gr Line delivered behind it.
  inWindow = true;
  const uk2 = rec(2 + MAX_NOTES, 'uk2');
  const gr = rec(3 + MAX_NOTES, 'gr');
  drainer.report(unknown, report(uk2), uk2);
  drainer.report(null, report(gr), gr);
  t.equal(outcomes.counters.persisted, MAX_NOTES + 1);
  // SIGTERM inside that window.
  drainer.settle();
  await doubt.save([], drainer.deliveredAhead());
  const file = join(dir, DOUBT_FILE);
  const f = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Doubt : null;
  t.same(f?.delivered, { [printOf(gr)]: 1 }, 'the gr Line above the watermark on disk is in in-doubt.json as delivered');
  const next = new InDoubt(dir, 'web1', {}, log);
  await next.load();
  await next.confirm(() => false);
  t.equal(next.skips(gr.topic, gr.time, gr.payload), DELIVERED, 'the next start does not send it again, nor count it again');
});

t.test('reports in order: nothing noted, nothing in in-doubt.json', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scratchd-gap-audit-'));
  const { drainer, doubt } = drainerOf(dir);
  inWindow = true;
  for (let seq = 1; seq <= 100; seq++) {
    const r = rec(seq, 'gr');
    drainer.report(null, report(r), r);
  }
  drainer.settle();
  await doubt.save([], drainer.deliveredAhead());
  t.notOk(existsSync(join(dir, DOUBT_FILE)), 'no doubt file');
});

t.test('ledger.json replaced at the stop but the directory\'s fsync failed: a Line alike to one delivered, not delivered itself, is still sent at the next start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scratchd-gap-audit-'));
  faults.reset();
  faults.under(dir);
  t.teardown(() => faults.reset());
  const cfg = { enabled: true, dir, segmentBytes: 1 << 20, fsyncMs: 3_600_000, maxBytes: 1 << 30, minFreeBytes: 0 };
  const spool = new Spool(cfg, log, quiet);
  await spool.open();
  // Two Lines alike in topic, time and bytes (A), the first delivered, the second not.
  const A = Buffer.from('{"id":"same"}');
  const lines: [string, number, Buffer][] = [
    ['uk', 1, Buffer.from('{"id":"uk1"}')], ['gr', 5, A], ['gr', 3, Buffer.from('{"id":"gr3"}')],
    ['uk', 4, Buffer.from('{"id":"uk4"}')], ['gr', 5, Buffer.from('{"id":"gr5"}')], ['gr', 5, A],
  ];
  for (const [flavor, time, payload] of lines) spool.append(flavor, time, payload);
  await spool.flush(); // ledger.json: 0
  const { drainer, doubt } = drainerOf(dir, spool);
  await doubt.load();
  const out = (await spool.read(10)).map((r): SpooledRef => ({ seq: r.seq, flavor: r.flavor, time: r.time, topic: r.flavor, payload: r.payload }));
  t.equal(out.length, 6);
  const [uk1, a1, gr3, uk4, gr5] = out as [SpooledRef, SpooledRef, SpooledRef, SpooledRef, SpooledRef];
  // Reports across partitions: gr5 first, then the first A and gr3; uk1 given up on
  // after its window (the watermark moves to 3), uk4 retried, the second A not reported.
  inWindow = true;
  drainer.report(null, report(gr5), gr5);
  drainer.report(null, report(a1), a1);
  drainer.report(null, report(gr3), gr3);
  drainer.report(unknown, report(uk4), uk4);
  inWindow = false;
  drainer.report(unknown, report(uk1), uk1);
  inWindow = true;
  t.equal(spool.acked, 3);
  // SIGTERM: the spool's close writes ledger.json (3); the directory's fsync after the rename fails.
  drainer.settle();
  faults.failNth('fsync', 2, 'EIO');
  await spool.close();
  t.same(readLedger(dir), { acked: 3 }, 'ledger.json holds 3: the next start reads from 4');
  await doubt.save([], drainer.deliveredAhead());
  faults.reset();

  // The next start: which records it sends.
  const next = new Spool(cfg, log, quiet);
  await next.open();
  const d2 = new InDoubt(dir, 'web1', {}, log);
  await d2.load();
  await d2.confirm(() => false);
  const sent: string[] = [];
  for (const r of await next.read(10)) if (d2.skips(r.flavor, r.time, r.payload) === null) sent.push(r.payload.toString());
  await next.close();
  t.same(sent.sort(), [A.toString(), '{"id":"uk4"}'], 'the second A and uk4 sent; gr5, delivered, skipped');
});
