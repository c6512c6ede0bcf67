/**
 * The read-back (doubt.ts): which Lines in doubt a topic already holds.
 * Per partition it reads from past the last offset acknowledged before the
 * shutdown (and not before the first message as new as the oldest Line in
 * doubt) to the end, with a consumer of its own that joins no group and
 * commits nothing, and counts this instance's messages whose fingerprint is
 * in doubt. A partition where that run had nothing acknowledged is not read
 * (its Lines in doubt are sent again). Only the main thread runs it (node-rdkafka).
 */
import Kafka from 'node-rdkafka';
import { fingerprint, Tally, type Unsure } from './doubt.js';

export interface ReadBackLimits {
  /** Messages to read at most, over all partitions; past it, nothing is taken as found. */
  maxMessages: number;
  /** Each broker call, and the whole read. */
  callTimeoutMs: number;
  totalTimeoutMs: number;
  /** The first pause before a failed read-back is tried again (then doubled, up to 10 s). */
  retryMinMs: number;
}

export const READBACK_LIMITS: ReadBackLimits = { maxMessages: 2_000_000, callTimeoutMs: 5_000, totalTimeoutMs: 120_000, retryMinMs: 500 };

/** Why a read-back found nothing to rely on (the Lines are sent again). */
export class ReadBackError extends Error {}

type Call<T> = (cb: (err: Kafka.LibrdKafkaError | null | undefined, v: T) => void) => void;
const call = <T>(f: Call<T>): Promise<T> => new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));

/**
 * The fingerprints of `unsure` found in the topics, as a Tally (at most as
 * many of each as are in doubt). Throws when a broker cannot be asked (try
 * again later) or ReadBackError when the part to read is past the limits.
 */
export async function readBack(settings: Record<string, string | number | boolean>, instance: string, unsure: Unsure,
  limits: ReadBackLimits = READBACK_LIMITS, stopped: () => boolean = () => false): Promise<Tally> {
  const doubt = new Tally();
  for (const p of unsure.prints) doubt.add(p);
  const consumer = new Kafka.KafkaConsumer({
    ...settings,
    'group.id': `scratchd-readback-${instance}`,
    'enable.auto.commit': false,
    'enable.partition.eof': false,
    // Everything written counts, whatever another producer's open transaction holds back.
    'isolation.level': 'read_uncommitted',
  }, { 'auto.offset.reset': 'earliest' });
  await call<unknown>((cb) => consumer.connect({ timeout: limits.callTimeoutMs }, cb));
  try {
    const deadline = Date.now() + limits.totalTimeoutMs;
    const found = new Tally();
    for (const topic of Object.keys(unsure.acked)) {
      if (stopped()) throw new Error('stopped');
      await readTopic(consumer, topic, unsure, instance, limits, deadline, doubt, found, stopped);
    }
    return found;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

async function readTopic(consumer: Kafka.KafkaConsumer, topic: string, unsure: Unsure, instance: string,
  limits: ReadBackLimits, deadline: number, doubt: Tally, found: Tally, stopped: () => boolean): Promise<void> {
  const md = await call<Kafka.Metadata>((cb) => consumer.getMetadata({ topic, timeout: limits.callTimeoutMs }, cb));
  const partitions = md.topics.find((t) => t.name === topic)?.partitions.map((p) => p.id) ?? [];
  if (partitions.length === 0) return; // gone: nothing of it can be found
  const byTime = await call<Kafka.TopicPartitionOffset[]>((cb) => consumer.offsetsForTimes(
    partitions.map((partition) => ({ topic, partition, offset: unsure.minTime })), limits.callTimeoutMs, cb));
  const from = new Map<number, number>();
  const to = new Map<number, number>();
  let total = 0;
  for (const partition of partitions) {
    if (stopped()) throw new Error('stopped');
    const w = await call<Kafka.WatermarkOffsets>((cb) => consumer.queryWatermarkOffsets(topic, partition, limits.callTimeoutMs, cb));
    const t = byTime.find((x) => x.partition === partition)?.offset ?? -1;
    if (t < 0) continue; // no message as new as the oldest Line in doubt
    // Without an offset acknowledged in that run, this instance's earlier
    // messages are there too, and Lines alike among them (same time and
    // bytes) would be taken for Lines in doubt and never sent: not read,
    // its Lines in doubt are sent again (at least once).
    const acked = unsure.acked[topic]?.[String(partition)];
    if (acked === undefined) continue;
    const start = Math.max(t, acked + 1, w.lowOffset);
    if (start >= w.highOffset) continue;
    from.set(partition, start);
    to.set(partition, w.highOffset);
    total += w.highOffset - start;
  }
  if (total === 0) return;
  if (total > limits.maxMessages) throw new ReadBackError(`${total} messages to read in ${topic}, more than ${limits.maxMessages}`);
  consumer.assign([...from].map(([partition, offset]) => ({ topic, partition, offset })));
  try {
    let progress = Date.now();
    let position = 0;
    while (to.size > 0) {
      if (stopped()) throw new Error('stopped');
      if (Date.now() > deadline) throw new ReadBackError(`not read within ${limits.totalTimeoutMs} ms`);
      // Nothing for a while: the broker is gone again. Retried, like a
      // broker that does not answer at all, rather than given up.
      if (Date.now() - progress > limits.callTimeoutMs * 3) throw new Error(`${topic}: nothing read for ${limits.callTimeoutMs * 3} ms`);
      const batch = await call<Kafka.Message[]>((cb) => consumer.consume(1000, cb));
      for (const m of batch) {
        const end = to.get(m.partition);
        if (end === undefined || m.offset >= end || m.value === null || !fromInstance(m.headers, instance)) continue;
        const print = fingerprint(topic, m.timestamp ?? -1, m.value);
        if (doubt.take(print)) found.add(print);
      }
      // Done with a partition once the next offset to read is its end (a
      // control record, which is never returned, may be the last one).
      let at = 0;
      for (const p of consumer.position([...to.keys()].map((partition) => ({ topic, partition })))) {
        at += Math.max(0, p.offset);
        if (p.offset >= 0 && p.offset >= to.get(p.partition)!) to.delete(p.partition);
      }
      if (batch.length > 0 || at !== position) progress = Date.now();
      position = at;
    }
  } finally {
    consumer.unassign();
  }
}

function fromInstance(headers: Kafka.MessageHeader[] | undefined, instance: string): boolean {
  if (headers === undefined) return false;
  for (const h of headers) {
    const v = h.instance;
    if (v !== undefined) return String(v) === instance;
  }
  return false;
}
