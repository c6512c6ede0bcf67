/**
 * For the spool tests: a daemon whose librdkafka RAM queue is small (so an
 * outage outgrows it within seconds) with a disk spool, and checks of what
 * reached Kafka against the day files (the file backend writes Lines in
 * arrival order, so it is the reference order).
 */
import { readdirSync } from 'node:fs';
import Kafka from 'node-rdkafka';
import type { Test } from 'tap';
import { tempDir } from './daemon.js';
import { consume } from './consume.js';
import { startKafkaDaemon, type KafkaDaemon } from './kafka-daemon.js';

/**
 * librdkafka's queue in these tests: the backend spills at half of it.
 * Small, so that an outage many times what RAM holds lasts seconds; still
 * well above what is in flight in normal mode on a loaded machine.
 */
export const RAM_QUEUE = 300;

export function spoolDir(): string {
  return tempDir('scratchd-spool-');
}

export function segments(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.seg'));
}

export function startSpoolDaemon(bootstrap: string, dir: string, opts: {
  spool?: Record<string, unknown>;
  topics?: Record<string, string>;
  config?: Record<string, unknown>;
  kafka?: Record<string, unknown>;
} = {}): Promise<KafkaDaemon> {
  return startKafkaDaemon(bootstrap, {
    ...(opts.topics !== undefined ? { topics: opts.topics } : {}),
    config: opts.config ?? {},
    kafka: {
      flushTimeoutMs: 2000,
      ...opts.kafka,
      spool: { dir, fsyncMs: 100, ...opts.spool },
      rdkafka: { 'queue.buffering.max.messages': RAM_QUEUE },
    },
  });
}

const idOf = (v: Buffer | string): string => (JSON.parse(v.toString()) as { id: string }).id;

export interface TopicCheck {
  /** ids in the topic, in offset order (single partition). */
  ids: string[];
  missing: string[];
  duplicates: number;
}

/** Read the topic until every expected id is there (or the timeout), and compare. */
export async function readTopic(bootstrap: string, topic: string, expected: string[], timeoutMs = 120_000, toEnd = false): Promise<TopicCheck> {
  // toEnd: the producer is done (its spool empty), so what the topic holds
  // now is all it will hold: read to its end, with no pause for late extras,
  // instead of waiting timeoutMs for Lines that a SIGKILL lost by design.
  const got = await consume(bootstrap, topic, toEnd ? { settleMs: 0, timeoutMs } : { count: expected.length, settleMs: 2000, timeoutMs });
  const ids = got.sort((a, b) => a.offset - b.offset).map((m) => idOf(m.value));
  const seen = new Set(ids);
  return { ids, missing: expected.filter((id) => !seen.has(id)), duplicates: ids.length - seen.size };
}

/**
 * The topic's order equals the day file's (arrival) order, over the ids in
 * both, first occurrences only. Returns how many positions differ.
 */
export function orderAgainstFile(t: Test, d: KafkaDaemon, flavor: string, kafkaIds: string[], what = 'arrival order kept'): void {
  const file = d.fileLines(flavor).map(idOf);
  const inKafka = new Set(kafkaIds);
  const fileOrder = file.filter((id) => inKafka.has(id));
  const seen = new Set<string>();
  const kafkaOrder = kafkaIds.filter((id) => !seen.has(id) && seen.add(id) && true);
  const inFile = new Set(fileOrder);
  const kafkaFiltered = kafkaOrder.filter((id) => inFile.has(id));
  let firstDiff = -1;
  for (let i = 0; i < fileOrder.length; i++) {
    if (fileOrder[i] !== kafkaFiltered[i]) {
      firstDiff = i;
      break;
    }
  }
  t.equal(firstDiff, -1, `${flavor}: ${what} (${fileOrder.length} Lines)`,
    firstDiff < 0 ? {} : { file: fileOrder.slice(Math.max(0, firstDiff - 3), firstDiff + 5), kafka: kafkaFiltered.slice(Math.max(0, firstDiff - 3), firstDiff + 5) });
}

/** The `flavor` header of each of the first `count` messages of a single-partition topic (null when absent). */
export async function flavorHeaders(bootstrap: string, topic: string, count: number): Promise<(string | null)[]> {
  const consumer = new Kafka.KafkaConsumer({
    'metadata.broker.list': bootstrap,
    'group.id': `scratchd-test-headers-${process.pid}-${Date.now()}`,
    'enable.auto.commit': false,
    'client.id': 'scratchd-test-headers',
  }, { 'auto.offset.reset': 'earliest' });
  await new Promise<void>((resolve, reject) => consumer.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve())));
  try {
    consumer.assign([{ topic, partition: 0, offset: -2 /* beginning */ }]);
    const out: (string | null)[] = [];
    const deadline = Date.now() + 60_000;
    while (out.length < count && Date.now() < deadline) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(1000, (err, msgs) => (err ? reject(err) : resolve(msgs))));
      for (const m of batch) {
        const h = m.headers?.find((x) => 'flavor' in x)?.flavor;
        out.push(h === undefined ? null : Buffer.isBuffer(h) ? h.toString() : String(h));
      }
    }
    return out.slice(0, count);
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}
