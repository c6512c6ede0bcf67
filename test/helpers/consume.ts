/**
 * Read a topic back from the beginning with a real node-rdkafka consumer.
 *
 *   const msgs = await consume(kafka.bootstrap, 'scratch.gr', { count: 3 });
 *
 * Partitions are assigned directly (no consumer group rebalance to wait
 * for) from the start of the log. Reading stops when `count` messages have
 * arrived and then `settleMs` passed without more (so a duplicate after the
 * expected ones is seen), or at `timeoutMs` with whatever arrived: the
 * caller compares. Without `count`, it reads until the topic's high
 * watermarks (taken at the start) are reached.
 */
import Kafka from 'node-rdkafka';
import { metadata } from './kafka.js';
import { sleep } from './wait.js';

export interface Consumed {
  value: Buffer;
  key: Buffer | null;
  timestamp: number;
  topic: string;
  partition: number;
  offset: number;
  /** Message headers, name → value (text). */
  headers: Record<string, string>;
}

export interface ConsumeOptions {
  /** Stop once this many messages arrived (then settle). */
  count?: number;
  /** Give up waiting after this long; default 60 s. */
  timeoutMs?: number;
  /** After `count` arrived, keep reading this long for extras; default 500 ms. */
  settleMs?: number;
}

export async function consume(bootstrap: string, topic: string, opts: ConsumeOptions = {}): Promise<Consumed[]> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const settleMs = opts.settleMs ?? 500;
  const deadline = Date.now() + timeoutMs;

  // The topic may not exist yet (auto-created on first produce): wait for it.
  let partitions: number[] = [];
  while (partitions.length === 0) {
    const md = await metadata(bootstrap, topic, 5000).catch(() => null);
    const t = md?.topics.find((x) => x.name === topic);
    if (t !== undefined && t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)) {
      partitions = t.partitions.map((p) => p.id);
    } else if (Date.now() > deadline) {
      return [];
    } else {
      await sleep(200);
    }
  }

  const consumer = new Kafka.KafkaConsumer({
    'metadata.broker.list': bootstrap,
    'group.id': `scratchd-test-${process.pid}-${Date.now()}-${Math.random()}`,
    'enable.auto.commit': false,
    'enable.partition.eof': false,
    'client.id': 'scratchd-test-consumer',
  }, { 'auto.offset.reset': 'earliest' });
  await new Promise<void>((resolve, reject) => consumer.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve())));
  try {
    let target = opts.count;
    if (target === undefined) {
      target = 0;
      for (const p of partitions) {
        const w = await new Promise<Kafka.WatermarkOffsets>((resolve, reject) =>
          consumer.queryWatermarkOffsets(topic, p, 10_000, (err, offsets) => (err ? reject(err) : resolve(offsets))));
        target += w.highOffset - w.lowOffset;
      }
    }
    consumer.assign(partitions.map((partition) => ({ topic, partition, offset: -2 /* RD_KAFKA_OFFSET_BEGINNING */ })));
    const out: Consumed[] = [];
    let settleUntil = target === 0 ? Date.now() + settleMs : Infinity;
    while (Date.now() < deadline && Date.now() < settleUntil) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(1000, (err, msgs) => (err ? reject(err) : resolve(msgs))));
      for (const m of batch) {
        out.push({
          value: m.value ?? Buffer.alloc(0),
          key: m.key === undefined || m.key === null ? null : Buffer.isBuffer(m.key) ? m.key : Buffer.from(String(m.key)),
          timestamp: m.timestamp ?? -1,
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          headers: Object.fromEntries((m.headers ?? []).flatMap((h) => Object.entries(h).map(([k, v]) => [k, String(v)]))),
        });
      }
      if (out.length >= target && settleUntil === Infinity) settleUntil = Date.now() + settleMs;
    }
    return out;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}
