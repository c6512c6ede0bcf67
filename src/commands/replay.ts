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
import { dayNames, flavorDir } from '../file/paths.js';
import { code, ERR } from '../kafka/errors.js';
import { messageKey } from '../kafka/key.js';
import { linesOf, planParts, type FileLine, type Part } from '../recovery/day-lines.js';
import { parseTime } from '../day.js';
import { connectProducer } from '../recovery/kafka.js';
import { disconnectProducer } from '../kafka/disconnect.js';
import { CommandError, commandArgs, flavorNamed, runCommand } from './command.js';
import { readLossWindows } from '../losses.js';
import { progressBar } from '../recovery/progress.js';
import { refKey, resumePoint, writeProgress, type LineRef, type Progress, type Start } from '../recovery/replay-progress.js';
import { Watermark } from '../recovery/watermark.js';

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
 * report's error carries only librdkafka's text: kafka/errors.ts tells its
 * code from that.
 */
const NEVER = new Set<number>([ERR.ERR_MSG_SIZE_TOO_LARGE, ERR.ERR_INVALID_MSG_SIZE, ERR.ERR_RECORD_LIST_TOO_LARGE, ERR.ERR_INVALID_MSG, ERR.ERR_INVALID_RECORD]);

function never(err: unknown): boolean {
  return NEVER.has(code(err) ?? 0);
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
  const root = req.config.backends.file.dir;
  const dir = flavorDir(root, req.flavor.name);
  const parts = await planParts(root, req.flavor, req.from, req.to, dayNames(req.config.backends.file), (text) => process.stderr.write(`scratchd replay: ${text}\n`));
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

async function replay(req: Request): Promise<number> {
  const parts = await plan(req);
  const progressFile = join(req.config.stateDir, `replay-${req.flavor.name}-${req.from}-${req.to}.json`);
  const start = resumePoint(progressFile, req.resume);
  if ('complete' in start) {
    const never = start.undeliverable.length;
    process.stdout.write(`replay ${req.flavor.name}: already complete (${start.delivered} Lines delivered` +
      `${never > 0 ? `, ${never} never deliverable: listed in ${progressFile}` : ''}); nothing to do\n`);
    return 0;
  }
  const todo = parts.filter((p) => p.ranges.some((r) => r.end > offsetIn(start, p)));
  if (req.dryRun) return dryRun(req, parts, todo, start);
  const producer = await connectProducer(req.config.backends.kafka, 'replay');
  return new Replayer(req, parts, start, producer).run(todo);
}

/** The byte of `p` this run reads from: all of a day after the position, none before it. */
function offsetIn(start: Start, p: Part): number {
  const at = start.resumeAt;
  return at === null || p.day > at.day ? 0 : p.day < at.day ? Infinity : at.offset;
}

async function dryRun(req: Request, parts: readonly Part[], todo: readonly Part[], start: Start): Promise<number> {
  let lines = 0;
  let bytes = 0;
  for await (const l of linesAt(parts, [...start.retry.values()])) {
    lines++;
    bytes += l.json.length + 1;
  }
  for (const p of todo) {
    for await (const l of linesOf(p, offsetIn(start, p))) {
      lines++;
      bytes += l.end - l.start;
    }
  }
  process.stdout.write(`replay ${req.flavor.name} (dry run): ${lines} Lines (${bytes} bytes) from ${todo.length} day file(s) ` +
    `would be produced to topic ${req.flavor.topic}\n`);
  return 0;
}

/** One live replay: produces, settles reports against the watermark, saves progress, reports. */
class Replayer {
  private readonly watermark: Watermark;
  private readonly retry: Map<string, LineRef>;
  private readonly undeliverable: Progress['undeliverable'];
  private readonly headers: Kafka.MessageHeader[];
  private produced = 0;
  private delivered: number;
  private deliveredNow = 0;
  private neverNow = 0;
  private outstanding = 0;
  private interrupted = 0;
  /** Why producing stopped before the end of the range, other than a signal. */
  private stopped: string | null = null;
  private dirty = false;
  private readBytes = 0;

  constructor(private readonly req: Request, private readonly parts: readonly Part[], private readonly start: Start,
    private readonly producer: Kafka.Producer) {
    this.watermark = new Watermark(start.resumeAt);
    this.retry = start.retry;
    this.undeliverable = start.undeliverable;
    this.delivered = start.delivered;
    this.headers = [{ flavor: req.flavor.name }];
    producer.on('delivery-report', (err, report) => {
      this.outstanding--;
      this.settle(report.opaque as Sent, err ?? null);
    });
  }

  private readonly onSignal = (): void => {
    this.interrupted++;
  };

  async run(todo: readonly Part[]): Promise<number> {
    this.save(false);
    const saver = setInterval(() => { if (this.dirty) this.save(false); }, SAVE_EVERY_MS);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    const bar = progressBar(`replay ${this.req.flavor.name}`, bytesToRead(todo, this.start), 'bytes');
    let reachedEnd = false;
    try {
      await this.retryAll(); // the last run's failures first
      await this.produceRange(todo, bar);
      reachedEnd = this.interrupted === 0 && this.stopped === null;
      // Whatever is in flight is delivered or fails (message.timeout.ms) before we go on.
      await this.drain();
      if (this.interrupted === 0 && this.stopped === null) await this.retryAll();
    } catch (err) {
      // An index found not to be the file's: stop producing, keep what was settled.
      if (!(err instanceof CommandError)) throw err;
      this.stopped = err.message;
      reachedEnd = false;
      await this.drain();
    }
    bar.update(this.readBytes, this.produced);
    bar.stop();
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    // Reports that come while the producer flushes on disconnect (after a second signal) still count.
    await disconnectProducer(this.producer, 5000);
    clearInterval(saver);
    const complete = reachedEnd && this.outstanding === 0 && this.retry.size === 0 && this.interrupted === 0 && this.stopped === null;
    this.save(complete);
    return this.report(complete);
  }

  /** Every Line of the range from the position on, at the rate asked for. */
  private async produceRange(todo: readonly Part[], bar: ReturnType<typeof progressBar>): Promise<void> {
    const started = Date.now();
    for (const part of todo) {
      if (this.stopped !== null) return;
      const timeOf = batchTimes(part.entries, part.unknown);
      for await (const line of linesOf(part, offsetIn(this.start, part))) {
        if (this.interrupted > 0 || this.stopped !== null) return;
        // Rate: the n-th Line goes no earlier than n/rate seconds after the start.
        const due = started + (this.produced * 1000) / this.req.rate;
        if (due - Date.now() >= 5) await sleep(due - Date.now());
        const it = item(part, line, timeOf);
        await this.produce({ seq: this.watermark.push({ day: part.day, offset: line.end }), item: it });
        this.produced++;
        this.readBytes += line.end - line.start;
        if ((this.produced & 255) === 0) bar.update(this.readBytes, this.produced);
      }
    }
  }

  private save(complete: boolean): void {
    const p = this.watermark.position;
    writeProgress(this.start.progressFile, {
      flavor: this.req.flavor.name, from: iso(this.req.from), to: iso(this.req.to),
      day: p?.day ?? '', offset: p?.offset ?? 0, delivered: this.delivered, complete,
      retry: [...this.retry.values()], undeliverable: this.undeliverable,
    });
    this.dirty = false;
  }

  /** A report, or a refusal by produce() itself. */
  private settle(sent: Sent, err: Kafka.LibrdKafkaError | Error | null): void {
    if (err === null) {
      this.delivered++;
      this.deliveredNow++;
    }
    if (sent.done !== undefined) {
      sent.done(err as Kafka.LibrdKafkaError | null);
    } else if (err !== null) {
      // Listed before the watermark passes it: the position never runs ahead of what is kept.
      this.retry.set(refKey(sent.item.ref), sent.item.ref);
      if (!never(err) && this.stopped === null) this.stopped = `a Line failed: ${err.message}`;
    }
    if (sent.seq !== null) this.watermark.settle(sent.seq, true);
    this.dirty = true;
  }

  /** Produce one message; a refusal by produce() itself (or a full queue at a second signal) settles it as failed. */
  private async produce(sent: Sent): Promise<void> {
    const { flavor } = this.req;
    for (;;) {
      try {
        this.producer.produce(flavor.topic, null, sent.item.json, messageKey(sent.item.json, this.req.config.backends.kafka.key),
          sent.item.time, sent, this.headers);
        this.outstanding++;
        return;
      } catch (err) {
        if (code(err) === ERR.ERR__QUEUE_FULL && this.interrupted < 2) {
          await sleep(20); // librdkafka's queue is full: wait for deliveries
          continue;
        }
        this.settle(sent, err as Error);
        return;
      }
    }
  }

  /** Wait for every report (a second signal stops waiting). */
  private async drain(): Promise<void> {
    while (this.outstanding > 0 && this.interrupted < 2) await new Promise<void>((r) => this.producer.flush(500, () => r()));
  }

  /**
   * Produce a failed Line again, alone: delivered, it leaves the list;
   * refused again for what it is, it can never be delivered and is reported
   * once; failed otherwise, it stays listed and producing stops.
   */
  private async again(it: Item): Promise<void> {
    const err = await new Promise<Kafka.LibrdKafkaError | null>((done) => {
      void this.produce({ seq: null, item: it, done }).then(() => this.drain());
    });
    this.produced++;
    if (err !== null && !never(err)) {
      this.stopped = `a Line failed again: ${err.message}`;
      return;
    }
    this.retry.delete(refKey(it.ref));
    if (err !== null) {
      this.neverNow++;
      this.undeliverable.push({ ...it.ref, reason: err.message });
      process.stderr.write(`scratchd replay: ${it.ref.day} bytes ${it.ref.start}-${it.ref.end} (a Line of ${it.json.length} bytes) ` +
        `can never be delivered: ${err.message}; skipped, and listed in ${this.start.progressFile}\n`);
    }
  }

  private async retryAll(): Promise<void> {
    for await (const it of linesAt(this.parts, [...this.retry.values()])) {
      if (this.interrupted > 0 || this.stopped !== null) return;
      await this.again(it);
    }
  }

  /** The summary on stdout, how to continue on stderr; the exit code. */
  private report(complete: boolean): number {
    const { req, neverNow, interrupted } = this;
    const range = `${iso(req.from)} to ${iso(req.to)}`;
    process.stdout.write(`replay ${req.flavor.name} ${range} → topic ${req.flavor.topic}: ${this.produced} Lines produced, ` +
      `${this.deliveredNow} delivered, ${neverNow + this.retry.size} failed${neverNow > 0 ? ` (${neverNow} never deliverable, skipped)` : ''}` +
      `${interrupted > 0 ? ', interrupted' : ''}\n`);
    if (!complete) {
      const args = `--config ${req.configFile} --flavor ${req.flavor.name} --from ${iso(req.from)} --to ${iso(req.to)}`;
      process.stderr.write(`scratchd replay: not complete${this.stopped !== null ? ` (${this.stopped})` : ''}; continue with: scratchd replay ${args} --resume\n`);
    }
    return complete ? (neverNow > 0 ? 1 : 0) : interrupted > 0 ? 130 : 1;
  }
}

/** The bytes of the plain day files this run reads (a .gz's are not known before reading it). */
function bytesToRead(todo: readonly Part[], start: Start): number {
  return todo.reduce((n, p) => n + (p.gz ? 0 : p.ranges.reduce((m, r) => m + Math.max(0, r.end - Math.max(r.start, offsetIn(start, p))), 0)), 0);
}

const iso = (t: number): string => new Date(t).toISOString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
