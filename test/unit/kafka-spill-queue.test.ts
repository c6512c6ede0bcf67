// The Kafka backend's full queue spills to the spool (backend.ts send()),
// in-process: no broker listens (port 1), so every Line waits for the spool.
// What is checked is what a user notices: every Line sent is in the spool
// once, in the order sent, or counted dropped; the pump keeps working after
// a spill, whenever in its cycle the spill came.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeLogger } from '../../src/log.js';
import { KafkaBackend } from '../../src/kafka/backend.js';
import { Spool } from '../../src/kafka/spool/spool.js';
import type { KafkaSpoolConfig } from '../../src/config.js';
import { flavor, kafkaConfig, line } from '../helpers/lines.js';
import { until } from '../helpers/wait.js';

const log = makeLogger('silent');
const gr = flavor('gr');

function spoolDir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'audit-kafka-spill-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function spoolConfig(dir: string, maxBytes = 1 << 30): KafkaSpoolConfig {
  return { enabled: true, dir, segmentBytes: 1 << 20, fsyncMs: 50, maxBytes, minFreeBytes: 0 };
}

/** A backend with a spool and a queue of `capacity`; nothing answers on port 1. */
async function started(t: Test, dir: string, capacity: number, maxBytes?: number): Promise<KafkaBackend> {
  const k = new KafkaBackend(kafkaConfig('127.0.0.1:1', { queueCapacity: capacity, flushTimeoutMs: 500, spool: spoolConfig(dir, maxBytes) }), log, [gr]);
  t.teardown(() => k.close());
  await k.start();
  await until('the spool opened', () => k.spoolSnapshot()?.ready === 1);
  return k;
}

/** The ids the spool holds, in its order, read by a fresh Spool after the backend closed. */
async function spooledIds(dir: string): Promise<string[]> {
  const s = new Spool(spoolConfig(dir), log, () => {});
  await s.open();
  const ids: string[] = [];
  for (;;) {
    const rs = await s.read(1000);
    if (rs.length === 0) break;
    for (const r of rs) {
      ids.push((JSON.parse(r.payload.toString()) as { id: string }).id);
      s.ack(r.seq);
    }
  }
  await s.close();
  return ids;
}

const send = (k: KafkaBackend, ids: string[]): void => {
  for (const id of ids) k.send(line(gr, { id }));
};
const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => String(from + i));

t.test('a burst that ends exactly at a spill leaves the pump alive: later Lines still reach the spool', async (t) => {
  const dir = spoolDir(t);
  const k = await started(t, dir, 4);
  // The pump waits for Lines; five in one turn: the fifth finds the queue
  // full and spills all five, before the pump's wake-up comes.
  send(k, range(0, 5));
  t.equal(k.spoolSnapshot()!.spilled_total, 5, 'the burst spooled');
  await new Promise((r) => setImmediate(r)); // the pump's wake-up, with the queue empty now
  // One more, a turn later: the pump must take it to the spool (spilling).
  send(k, ['5']);
  await until('the later Line spooled', () => k.spoolSnapshot()!.spilled_total === 6, 3000)
    .catch(() => {});
  t.equal(k.spoolSnapshot()!.spilled_total, 6, 'the Line after the burst reached the spool');
  await k.close();
  t.same(await spooledIds(dir), range(0, 6), 'every Line in the spool once, in order');
  t.equal(k.counters.dropped, 0, 'nothing dropped');
});

t.test('a spill while the pump waits mid-batch (first-connect grace) keeps every Line once, in order', async (t) => {
  const dir = spoolDir(t);
  const k = await started(t, dir, 4);
  // Within the first second no connect attempt has failed yet: the pump
  // holds its batch and waits. The next Lines fill the queue, then spill.
  send(k, range(0, 3));
  await new Promise((r) => setImmediate(r)); // the pump took 0..2 and waits
  await new Promise((r) => setImmediate(r));
  send(k, range(3, 8)); // 3..6 queue, 7 spills: the batch's rest, the queue, then 7
  send(k, range(8, 20));
  await until('every Line spooled', () => k.spoolSnapshot()!.spilled_total === 20, 5000).catch(() => {});
  t.equal(k.spoolSnapshot()!.spilled_total, 20, 'all 20 spooled');
  await k.close();
  t.same(await spooledIds(dir), range(0, 20), 'every Line in the spool once, in order');
  t.equal(k.counters.dropped, 0, 'nothing dropped');
});

t.test('a spool that refuses (full): each Line of the spilled queue is counted dropped once, with its reason', async (t) => {
  const dir = spoolDir(t);
  const k = await started(t, dir, 4, 1);
  const losses: string[] = [];
  k.onLoss = (_backend, _flavor, _time, reason) => { losses.push(reason); };
  send(k, range(0, 10));
  await new Promise((r) => setImmediate(r));
  send(k, range(10, 12));
  await until('every Line counted', () => k.counters.dropped === 12, 3000).catch(() => {});
  t.equal(k.counters.dropped, 12, 'all 12 dropped, each once');
  t.same(losses, Array(12).fill('spool_full'), 'each in a loss window, as spool_full');
  t.equal(k.spoolSnapshot()!.spilled_total, 0, 'none in the spool');
  t.match(k.health(), { state: 'down', reason: /the spool drops Lines \(spool_full\)/ });
  await k.close();
  t.equal(k.counters.dropped, 12, 'close counts none again');
});

t.test('a spool that cannot be opened: a full queue drops the Lines past it, each once, as queue_full', async (t) => {
  const file = join(spoolDir(t), 'a-file');
  writeFileSync(file, '');
  const k = new KafkaBackend(kafkaConfig('127.0.0.1:1', { queueCapacity: 4, flushTimeoutMs: 300, spool: spoolConfig(join(file, 'spool')) }), log, [gr]);
  t.teardown(() => k.close());
  const losses: string[] = [];
  k.onLoss = (_backend, _flavor, _time, reason) => { losses.push(reason); };
  await k.start();
  await until('running without the spool', () => k.spoolSnapshot() === null);
  send(k, range(0, 10));
  t.equal(k.counters.dropped, 6, 'the 6 past the queue dropped');
  t.same(losses, Array(6).fill('queue_full'), 'each in a loss window, as queue_full');
  await k.close();
  t.equal(k.counters.dropped, 10, 'at close, the 4 queued too (no broker): each Line once');
  t.same(losses.slice(6), Array(4).fill('drain_timeout'));
});
