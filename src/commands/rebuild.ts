/**
 * `scratchd rebuild`: a flavor's day file made again from its Kafka topic,
 * for a day the file backend lost (or lost part of).
 *
 * Reads every partition from the offset of the day's first instant in the
 * flavor's zone (offsetsForTimes, with a minute's slack for timestamps
 * slightly out of order) to the end of the partition as it was when the
 * rebuild began: a day's Lines may come long after it (a replay, a spool
 * drained after an outage). Keeps the messages whose timestamp (the Line's
 * arrival time) falls in the day and whose `flavor` header, if any, is the
 * flavor, and writes them, each with a newline, to
 * DIR/<flavor>/<flavor>-<day>.log with its index and manifest, merged by
 * timestamp (src/recovery/merge.ts). Each instance's Lines of a partition
 * keep their order, the order its file has them in: with one partition and
 * one instance (or --instance) that is byte for byte the original file.
 * Instances producing to one partition interleave by when their batches
 * reached the broker, not by time, so the union is re-merged by the Lines'
 * timestamps; at equal timestamps the lower instance name comes first, then
 * the lower partition.
 *
 * A partition is read until the offset that was its end, or until the
 * consumer says it reached the end: offsets may have gaps there
 * (transaction markers, compaction) that no message fills.
 *
 * The day's messages are held in memory until written: a day of one flavor
 * is what the daemon wrote in a day, and is written in one pass. A day not
 * over yet in the flavor's zone is refused: it would be written as complete.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type Kafka from 'node-rdkafka';
import type { Config } from '../config.js';
import type { Flavor } from '../flavor.js';
import { encodeEntries, type IndexEntry } from '../file/day-index.js';
import { daySpan, isDay } from '../day.js';
import { connectConsumer, partitionsOf } from '../recovery/kafka.js';
import { CommandError, commandArgs, flavorNamed, runCommand } from './command.js';
import { writeFileAtomic } from '../atomic-write.js';
import { makeManifest, writeManifest } from '../file/manifest.js';
import { dayNames, dayPaths, type DayPaths } from '../file/paths.js';
import { INSTANCE_RULE, isInstanceName } from '../instance.js';
import { mergeByTime, type Message } from '../recovery/merge.js';
import { progressBar } from '../recovery/progress.js';

const usage = `Usage: scratchd rebuild --config FILE --flavor NAME --day YYYY-MM-DD --out DIR [--instance NAME]

Write DIR/<flavor>/<day file> (named by backends.file.name, with its .idx and
.done manifest) from the flavor's Kafka topic: every message whose timestamp
falls in that day in the flavor's time zone, read from the day's start to the
topic's end: the Lines of every instance that produced to it, merged by their
timestamps (each instance's own order kept). The day must be over; DIR must
not be the live log directory.

  --instance NAME  only the messages of that instance (their instance header):
                   that instance's day file, named with it
  -h, --help       print this help
`;

/** Start reading this far before the day: timestamps may be a little out of order. */
const SLACK_MS = 60_000;
const TIMEOUT_MS = 10_000;

interface Request {
  config: Config;
  flavor: Flavor;
  day: string;
  out: string;
  /** --instance: only its messages, and its name in the file name and manifest; null: every instance's. */
  instance: string | null;
}

export const run = (argv: string[]): Promise<number> => runCommand('rebuild', usage, () => request(argv), rebuild);

function request(argv: string[]): Request | null {
  const args = commandArgs(argv, { flavor: { type: 'string' }, day: { type: 'string' }, out: { type: 'string' }, instance: { type: 'string' } });
  if (args === null) return null;
  const { values: v, config } = args;
  if (v.flavor === undefined || v.day === undefined || v.out === undefined) throw new CommandError('--flavor, --day and --out are required (try --help)');
  const flavor = flavorNamed(config, v.flavor);
  if (!isDay(v.day)) throw new CommandError(`--day ${v.day}: not a date (YYYY-MM-DD)`);
  if (samePath(v.out, config.backends.file.dir)) {
    throw new CommandError(`--out ${v.out} is the live log directory (backends.file.dir); rebuild elsewhere and move the file in by hand`);
  }
  const { last } = daySpan(v.day, flavor.timeZone);
  if (last >= Date.now()) {
    throw new CommandError(`${v.day} is not over yet in ${flavor.timeZone} (it ends ${iso(last + 1)}): a rebuild now would write part of it as the whole day`);
  }
  if (v.instance !== undefined && !isInstanceName(v.instance)) throw new CommandError(`--instance ${v.instance}: not an instance name (${INSTANCE_RULE})`);
  const req = { config, flavor, day: v.day, out: v.out, instance: v.instance ?? null };
  const file = outFiles(req).log;
  if (existsSync(file)) throw new CommandError(`${file} exists; remove it or choose another --out`);
  return req;
}

function samePath(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(a) === real(b);
}

async function rebuild(req: Request): Promise<number> {
  const { flavor, day } = req;
  const { first, last } = daySpan(day, flavor.timeZone);
  const topic = flavor.topic;
  const consumer = await connectConsumer(req.config.backends.kafka, 'rebuild');
  try {
    const partitions = await partitionsOf(consumer, topic);
    const starts = await offsetsAt(consumer, topic, partitions, first - SLACK_MS);
    const ends = await Promise.all(partitions.map((p) => highOffset(consumer, topic, p)));
    const ranges = partitions.map((p, i) => ({ partition: p, start: starts[i]!, end: ends[i]! })).filter((r) => r.start < r.end);
    const total = ranges.reduce((n, r) => n + r.end - r.start, 0);
    // The kept messages, one list per instance and partition (the key "instance/partition").
    const kept = new Map<string, { instance: string; partition: number; lines: Message[] }>();
    const bar = progressBar(`rebuild ${flavor.name} ${day}`, total, 'messages');
    let read = 0;
    let keptLines = 0;
    if (ranges.length > 0) {
      const endOf = new Map(ranges.map((r) => [r.partition, r.end]));
      // Partitions still to read; one leaves at its old end, or at the end the consumer reaches.
      const open = new Set(ranges.map((r) => r.partition));
      consumer.on('partition.eof', (eof) => open.delete(eof.partition));
      consumer.assign(ranges.map((r) => ({ topic, partition: r.partition, offset: r.start })));
      while (open.size > 0) {
        const batch = await new Promise<Kafka.Message[]>((res, rej) => consumer.consume(1000, (err, m) => (err ? rej(err) : res(m))));
        for (const m of batch) {
          if (m.offset >= endOf.get(m.partition)!) {
            open.delete(m.partition);
            continue;
          }
          if (m.offset + 1 >= endOf.get(m.partition)!) open.delete(m.partition);
          read++;
          const ts = m.timestamp ?? -1;
          if (ts < first || ts > last || m.value === null || !ofFlavor(m, flavor.name)) continue;
          const instance = headerOf(m, 'instance') ?? '';
          if (req.instance !== null && instance !== req.instance) continue;
          const key = `${instance}/${m.partition}`;
          let k = kept.get(key);
          if (k === undefined) kept.set(key, (k = { instance, partition: m.partition, lines: [] }));
          k.lines.push({ timestamp: ts, value: m.value });
          keptLines++;
        }
        bar.update(read, keptLines);
      }
    }
    bar.stop();
    if (keptLines === 0) throw new CommandError(`no Lines of ${flavor.name} on ${day} (${iso(first)} to ${iso(last)}) in topic ${topic}`);
    const streams = [...kept.values()].sort((x, y) => (x.instance < y.instance ? -1 : x.instance > y.instance ? 1 : x.partition - y.partition));
    const lines = mergeByTime(streams.map((k) => k.lines));
    const file = await write(req, lines);
    process.stdout.write(`rebuild ${flavor.name} ${day} from topic ${topic} (${ranges.length} partition(s)): ` +
      `${read} messages read, ${lines.length} Lines written to ${file}\n`);
    return 0;
  } finally {
    await new Promise<void>((r) => consumer.disconnect(() => r()));
  }
}

/** Per partition, the first offset with a timestamp at or after `time` (the end of the log when none). */
async function offsetsAt(consumer: Kafka.KafkaConsumer, topic: string, partitions: number[], time: number): Promise<number[]> {
  const found = await new Promise<Kafka.TopicPartitionOffset[]>((res, rej) =>
    consumer.offsetsForTimes(partitions.map((partition) => ({ topic, partition, offset: time })), TIMEOUT_MS,
      (err, tps) => (err ? rej(new CommandError(`offsetsForTimes on ${topic}: ${err.message}`)) : res(tps))));
  return Promise.all(partitions.map(async (p) => {
    const o = found.find((x) => x.partition === p)?.offset ?? -1;
    if (o >= 0) return o;
    const w = await new Promise<Kafka.WatermarkOffsets>((res, rej) => consumer.queryWatermarkOffsets(topic, p, TIMEOUT_MS,
      (err, offsets) => (err ? rej(new CommandError(`watermarks of ${topic}/${p}: ${err.message}`)) : res(offsets))));
    return w.highOffset;
  }));
}

/** The offset after the partition's last message now (its high watermark). */
function highOffset(consumer: Kafka.KafkaConsumer, topic: string, partition: number): Promise<number> {
  return new Promise((res, rej) => consumer.queryWatermarkOffsets(topic, partition, TIMEOUT_MS,
    (err, offsets) => (err ? rej(new CommandError(`watermarks of ${topic}/${partition}: ${err.message}`)) : res(offsets.highOffset))));
}

/** The day file this rebuild writes: named as the config names day files, with --instance's name if given. */
function outFiles(req: Pick<Request, 'config' | 'flavor' | 'day' | 'out' | 'instance'>): DayPaths {
  const file = req.config.backends.file;
  return dayPaths(req.out, req.flavor.name, req.day, dayNames({ ...file, instance: req.instance ?? file.instance }));
}

/** A message's header `name` as text, or undefined. */
function headerOf(m: Kafka.Message, name: string): string | undefined {
  for (const h of m.headers ?? []) {
    if (Object.hasOwn(h, name)) return String(h[name]);
  }
  return undefined;
}

/** No `flavor` header (a message from before it existed) counts as the topic's flavor. */
function ofFlavor(m: Kafka.Message, name: string): boolean {
  for (const h of m.headers ?? []) {
    if (Object.hasOwn(h, 'flavor')) return String(h.flavor) === name;
  }
  return true;
}

/** The day file, its index (an entry where the timestamp changes) and its manifest; returns the file's path. */
async function write(req: Request, lines: readonly Message[]): Promise<string> {
  const paths = outFiles(req);
  const file = paths.log;
  mkdirSync(dirname(file), { recursive: true, mode: 0o750 });
  let size = 0;
  for (const l of lines) size += l.value.length + 1;
  const data = Buffer.allocUnsafe(size);
  const entries: IndexEntry[] = [];
  let n = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    // Each run of equal timestamps is one "batch": replay gives its Lines their exact times.
    if (i === 0 || l.timestamp !== lines[i - 1]!.timestamp) entries.push({ time: l.timestamp, offset: n });
    l.value.copy(data, n);
    n += l.value.length;
    data[n++] = 10;
    min = Math.min(min, l.timestamp);
    max = Math.max(max, l.timestamp);
  }
  await writeFileAtomic(file, data);
  await writeFileAtomic(paths.idx, encodeEntries(entries));
  const digest = { lines: lines.length, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  await writeManifest(paths.done, makeManifest(req.flavor.name, req.day, digest, min, max, req.instance ?? req.config.instance));
  return file;
}


const iso = (t: number): string => new Date(t).toISOString();
