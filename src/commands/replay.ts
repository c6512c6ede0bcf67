/**
 * `scratchd replay`: produce to a flavor's topic the Lines of its day files
 * that arrived in a time range: what Kafka lost while the files kept it.
 *
 * The day file's sparse index maps the range to bytes (src/recovery/day-lines.ts):
 * whole write batches, so at most one batch of other Lines comes along at
 * each end. A Line's arrival time is not in the day file, only its batch's
 * index time: each message gets that as timestamp.
 *
 * Resumable: a progress file in stateDir holds the position after the
 * longest settled prefix of Lines (delivered, or failed and listed),
 * advanced on delivery reports. A Line that failed is produced again alone
 * once the pass is over (a broker refuses a whole batch for one Line in it):
 * refused again for what it is (too large), it is reported once and never
 * produced again; failed for a reason that may pass (a timeout, a broker
 * away), it is kept for `--resume`, and the replay stops producing at the
 * first such failure. Interrupted (SIGINT, SIGTERM), replay stops producing,
 * waits for the reports of what is in flight and saves; `--resume` produces
 * the kept Lines and continues from the position, so no delivered Line is
 * produced again.
 */
import { join } from 'node:path';
import type Kafka from 'node-rdkafka';
import type { Config } from '../config.js';
import type { Flavor } from '../flavor.js';
import { batchTimes } from '../file/day-index.js';
import { dayNames } from '../file/paths.js';
import { linesOf, planParts, type FileLine, type Part } from '../recovery/day-lines.js';
import { parseTime } from '../recovery/days.js';
import { connectProducer, ERR, errorCode } from '../recovery/kafka.js';
import { disconnectProducer } from '../kafka/disconnect.js';
import { CommandError, commandArgs, flavorNamed, runCommand } from './command.js';
import { readLossWindows } from '../recovery/losses.js';
import { progressBar } from '../recovery/progress.js';
import { readProgress, writeProgress, type LineRef, type Progress } from '../recovery/replay-progress.js';
import { Watermark, type Position } from '../recovery/watermark.js';

const usage = `Usage: scratchd replay --config FILE --flavor NAME --from TIME --to TIME [options]
       scratchd replay --config FILE --window ID [options]

Produce to the flavor's Kafka topic every Line of its day files that arrived
in [--from, --to] (ISO 8601 with Z or an offset, or ms since the epoch), in
order, each with its write batch's index time as timestamp. At most one
write batch of other Lines comes along at each end of the range.

  --window ID   the range and flavor of a loss window in <stateDir>/losses.jsonl
  --rate N      at most N Lines a second (default 10000)
  --dry-run     count what would be produced; connect to nothing
  --resume      continue an interrupted or failed replay of the same range
  -h, --help    print this help
`;

const DEFAULT_RATE = 10_000;
const SAVE_EVERY_MS = 200;

/**
 * What the broker refuses a message for, whatever the moment: produced again
 * alone and refused again, the Line can never be delivered. Any other
 * failure (timeouts, a broker away, authorization) may pass. A delivery
 * report's error carries only librdkafka's text (node-rdkafka gives it no
 * code), so the text of each of these codes is known too.
 */
const NEVER = new Set<number>([ERR.ERR_MSG_SIZE_TOO_LARGE, ERR.ERR_INVALID_MSG_SIZE, ERR.ERR_RECORD_LIST_TOO_LARGE, ERR.ERR_INVALID_MSG, ERR.ERR_INVALID_RECORD]);
const NEVER_TEXT = new Set(['message size too large', 'invalid message size', 'message batch larger than configured server segment size',
  'invalid message', 'broker failed to validate record']);

function never(err: { message: string }): boolean {
  return NEVER.has(errorCode(err) ?? 0) || NEVER_TEXT.has(err.message.toLowerCase().replace(/^broker: /, ''));
}

interface Request {
  configFile: string;
  config: Config;
  flavor: Flavor;
  from: number;
  to: number;
  rate: number;
  dryRun: boolean;
  resume: boolean;
}

/** A Line to produce: where it is, its bytes and its timestamp. */
interface Item {
  ref: LineRef;
  json: Buffer;
  time: number;
}

/** A message's opaque: its place for the watermark (null: produced alone), and who waits for its report. */
interface Sent {
  seq: number | null;
  item: Item;
  done?: (err: Kafka.LibrdKafkaError | null) => void;
}

export const run = (argv: string[]): Promise<number> => runCommand('replay', usage, () => request(argv), replay);

function request(argv: string[]): Request | null {
  const args = commandArgs(argv, {
    flavor: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, window: { type: 'string' },
    rate: { type: 'string' }, 'dry-run': { type: 'boolean' }, resume: { type: 'boolean' },
  });
  if (args === null) return null;
  const { values: v, config, configFile } = args;
  let { flavor: name, from, to } = v;
  if (v.window !== undefined) {
    if (name !== undefined || from !== undefined || to !== undefined) throw new CommandError('--window takes the place of --flavor, --from and --to');
    const w = readLossWindows(config.stateDir).find((x) => x.id === v.window);
    if (w === undefined) throw new CommandError(`no loss window ${v.window} in ${join(config.stateDir, 'losses.jsonl')}`);
    if (w.backend !== 'kafka') throw new CommandError(`window ${w.id} is a loss of the ${w.backend} backend; recover it with: ${w.command}`);
    ({ flavor: name, from, to } = w);
  }
  if (name === undefined || from === undefined || to === undefined) throw new CommandError('--flavor, --from and --to (or --window) are required (try --help)');
  const flavor = flavorNamed(config, name);
  const fromMs = parseTime(from);
  const toMs = parseTime(to);
  if (Number.isNaN(fromMs)) throw new CommandError(`--from ${from}: not an ISO 8601 time with a zone (Z or ±hh:mm) and every field in range, nor ms since the epoch up to 8640000000000000`);
  if (Number.isNaN(toMs)) throw new CommandError(`--to ${to}: not an ISO 8601 time with a zone (Z or ±hh:mm) and every field in range, nor ms since the epoch up to 8640000000000000`);
  if (fromMs > toMs) throw new CommandError(`--from ${from} is after --to ${to}`);
  const rate = v.rate === undefined ? DEFAULT_RATE : Number(v.rate);
  if (!Number.isInteger(rate) || rate < 1 || rate > 1_000_000) throw new CommandError(`--rate ${v.rate}: a whole number of Lines a second, 1 to 1000000`);
  return { configFile, config, flavor, from: fromMs, to: toMs, rate, dryRun: v['dry-run'] === true, resume: v.resume === true };
}

/** The day files the range touches, each with its byte ranges. */
async function plan(req: Request): Promise<Part[]> {
  const dir = join(req.config.backends.file.dir, req.flavor.name);
  const parts = await planParts(dir, req.flavor, req.from, req.to, dayNames(req.config.backends.file), (text) => process.stderr.write(`scratchd replay: ${text}\n`));
  if (parts.length === 0) {
    throw new CommandError(`no Lines of ${req.flavor.name} between ${iso(req.from)} and ${iso(req.to)} in ${dir}`);
  }
  return parts;
}

/** The Lines `refs` point at, with their timestamps, in file order. */
async function* linesAt(parts: readonly Part[], refs: readonly LineRef[]): AsyncGenerator<Item> {
  for (const part of parts) {
    const mine = refs.filter((r) => r.day === part.day).sort((a, b) => a.start - b.start);
    if (mine.length === 0) continue;
    const timeOf = batchTimes(part.entries, part.unknown);
    for await (const l of linesOf(part, 0, mine)) yield item(part, l, timeOf);
  }
}

function item(part: Part, l: FileLine, timeOf: (offset: number) => number): Item {
  return { ref: { day: part.day, start: l.start, end: l.end }, json: l.json, time: timeOf(l.start) };
}

const refKey = (r: LineRef): string => `${r.day}:${r.start}`;

async function replay(req: Request): Promise<number> {
  const { flavor } = req;
  const parts = await plan(req);
  const progressFile = join(req.config.stateDir, `replay-${flavor.name}-${req.from}-${req.to}.json`);
  const saved = readProgress(progressFile);
  if (req.resume && saved === null) throw new CommandError(`no interrupted replay of this range to resume (${progressFile})`);
  if (req.resume && saved!.complete) {
    const never = saved!.undeliverable.length;
    process.stdout.write(`replay ${flavor.name}: already complete (${saved!.delivered} Lines delivered` +
      `${never > 0 ? `, ${never} never deliverable: listed in ${progressFile}` : ''}); nothing to do\n`);
    return 0;
  }
  if (!req.resume && saved !== null && !saved.complete) {
    throw new CommandError(`an interrupted replay of this range delivered ${saved.delivered} Lines: add --resume to continue it, or delete ${progressFile} to start over`);
  }
  const resumeAt: Position | null = req.resume ? { day: saved!.day, offset: saved!.offset } : null;
  const startOf = (p: Part): number => (resumeAt === null || p.day > resumeAt.day ? 0 : p.day < resumeAt.day ? Infinity : resumeAt.offset);
  const todo = parts.filter((p) => p.ranges.some((r) => r.end > startOf(p)));
  /** Failed Lines before the position, to produce again: from the last run, then this one's. */
  const retry = new Map<string, LineRef>(req.resume ? saved!.retry.map((r) => [refKey(r), r]) : []);
  const undeliverable = req.resume ? [...saved!.undeliverable] : [];
  const totalBytes = todo.reduce((n, p) => n + (p.gz ? 0 : p.ranges.reduce((m, r) => m + Math.max(0, r.end - Math.max(r.start, startOf(p))), 0)), 0);

  if (req.dryRun) {
    let lines = 0;
    let bytes = 0;
    for await (const l of linesAt(parts, [...retry.values()])) {
      lines++;
      bytes += l.json.length + 1;
    }
    for (const p of todo) {
      for await (const l of linesOf(p, startOf(p))) {
        lines++;
        bytes += l.end - l.start;
      }
    }
    process.stdout.write(`replay ${flavor.name} (dry run): ${lines} Lines (${bytes} bytes) from ${todo.length} day file(s) ` +
      `would be produced to topic ${flavor.topic}\n`);
    return 0;
  }

  const producer = await connectProducer(req.config.backends.kafka, 'replay');
  const watermark = new Watermark(resumeAt);
  let produced = 0;
  let delivered = req.resume ? saved!.delivered : 0;
  let deliveredNow = 0;
  let neverNow = 0;
  let outstanding = 0;
  let interrupted = 0;
  /** Why producing stopped before the end of the range, other than a signal. */
  let stopped: string | null = null;
  let dirty = false;
  const save = (complete: boolean): void => {
    const p = watermark.position;
    const progress: Progress = {
      flavor: flavor.name, from: iso(req.from), to: iso(req.to),
      day: p?.day ?? '', offset: p?.offset ?? 0, delivered, complete,
      retry: [...retry.values()], undeliverable,
    };
    writeProgress(progressFile, progress);
    dirty = false;
  };
  save(false);
  const saver = setInterval(() => { if (dirty) save(false); }, SAVE_EVERY_MS);

  /** A report, or a refusal by produce() itself. */
  const settle = (sent: Sent, err: Kafka.LibrdKafkaError | Error | null): void => {
    if (err === null) {
      delivered++;
      deliveredNow++;
    }
    if (sent.done !== undefined) {
      sent.done(err as Kafka.LibrdKafkaError | null);
    } else if (err !== null) {
      // Listed before the watermark passes it: the position never runs ahead of what is kept.
      retry.set(refKey(sent.item.ref), sent.item.ref);
      if (!never(err) && stopped === null) stopped = `a Line failed: ${err.message}`;
    }
    if (sent.seq !== null) watermark.settle(sent.seq, true);
    dirty = true;
  };
  producer.on('delivery-report', (err, report) => {
    outstanding--;
    settle(report.opaque as Sent, err ?? null);
  });
  const onSignal = (): void => {
    interrupted++;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const headers: Kafka.MessageHeader[] = [{ flavor: flavor.name }];
  const keyField = req.config.backends.kafka.key;
  /** Produce one message; a refusal by produce() itself (or a full queue at a second signal) settles it as failed. */
  const produce = async (sent: Sent): Promise<void> => {
    for (;;) {
      try {
        producer.produce(flavor.topic, null, sent.item.json, keyOf(sent.item.json, keyField), sent.item.time, sent, headers);
        outstanding++;
        return;
      } catch (err) {
        if (errorCode(err) === ERR.ERR__QUEUE_FULL && interrupted < 2) {
          await sleep(20); // librdkafka's queue is full: wait for deliveries
          continue;
        }
        settle(sent, err as Error);
        return;
      }
    }
  };
  /** Wait for every report (a second signal stops waiting). */
  const drain = async (): Promise<void> => {
    while (outstanding > 0 && interrupted < 2) await new Promise<void>((r) => producer.flush(500, () => r()));
  };
  /**
   * Produce a failed Line again, alone: delivered, it leaves the list;
   * refused again for what it is, it can never be delivered and is reported
   * once; failed otherwise, it stays listed and producing stops.
   */
  const again = async (it: Item): Promise<void> => {
    const err = await new Promise<Kafka.LibrdKafkaError | null>((done) => {
      void produce({ seq: null, item: it, done }).then(drain);
    });
    produced++;
    if (err !== null && !never(err)) {
      stopped = `a Line failed again: ${err.message}`;
      return;
    }
    retry.delete(refKey(it.ref));
    if (err !== null) {
      neverNow++;
      undeliverable.push({ ...it.ref, reason: err.message });
      process.stderr.write(`scratchd replay: ${it.ref.day} bytes ${it.ref.start}-${it.ref.end} (a Line of ${it.json.length} bytes) ` +
        `can never be delivered: ${err.message}; skipped, and listed in ${progressFile}\n`);
    }
  };
  const retryAll = async (): Promise<void> => {
    for await (const it of linesAt(parts, [...retry.values()])) {
      if (interrupted > 0 || stopped !== null) return;
      await again(it);
    }
  };

  const bar = progressBar(`replay ${flavor.name}`, totalBytes, 'bytes');
  const started = Date.now();
  let readBytes = 0;
  let reachedEnd = false;
  try {
    await retryAll(); // the last run's failures first
    outer: for (const part of todo) {
      if (stopped !== null) break;
      const timeOf = batchTimes(part.entries, part.unknown);
      for await (const line of linesOf(part, startOf(part))) {
        if (interrupted > 0 || stopped !== null) break outer;
        // Rate: the n-th Line goes no earlier than n/rate seconds after the start.
        const due = started + (produced * 1000) / req.rate;
        if (due - Date.now() >= 5) await sleep(due - Date.now());
        const it = item(part, line, timeOf);
        await produce({ seq: watermark.push({ day: part.day, offset: line.end }), item: it });
        produced++;
        readBytes += line.end - line.start;
        if ((produced & 255) === 0) bar.update(readBytes, produced);
      }
    }
    reachedEnd = interrupted === 0 && stopped === null;
    // Whatever is in flight is delivered or fails (message.timeout.ms) before we go on.
    await drain();
    if (interrupted === 0 && stopped === null) await retryAll();
  } catch (err) {
    // An index found not to be the file's: stop producing, keep what was settled.
    if (!(err instanceof CommandError)) throw err;
    stopped = err.message;
    reachedEnd = false;
    await drain();
  }
  bar.update(readBytes, produced);
  bar.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Reports that come while the producer flushes on disconnect (after a second signal) still count.
  await disconnectProducer(producer, 5000);
  clearInterval(saver);
  const complete = reachedEnd && outstanding === 0 && retry.size === 0 && interrupted === 0 && stopped === null;
  save(complete);

  const range = `${iso(req.from)} to ${iso(req.to)}`;
  process.stdout.write(`replay ${flavor.name} ${range} → topic ${flavor.topic}: ${produced} Lines produced, ` +
    `${deliveredNow} delivered, ${neverNow + retry.size} failed${neverNow > 0 ? ` (${neverNow} never deliverable, skipped)` : ''}` +
    `${interrupted > 0 ? ', interrupted' : ''}\n`);
  if (!complete) {
    const args = `--config ${req.configFile} --flavor ${flavor.name} --from ${iso(req.from)} --to ${iso(req.to)}`;
    process.stderr.write(`scratchd replay: not complete${stopped !== null ? ` (${stopped})` : ''}; continue with: scratchd replay ${args} --resume\n`);
  }
  return complete ? (neverNow > 0 ? 1 : 0) : interrupted > 0 ? 130 : 1;
}

function keyOf(json: Buffer, field: string | null): string | null {
  if (field === null) return null;
  const v = (JSON.parse(json.toString()) as Record<string, unknown>)[field];
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

const iso = (t: number): string => new Date(t).toISOString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
