/**
 * `scratchd replay`: produce to a flavor's topic the Lines of its day files
 * that arrived in a time range: what Kafka lost while the files kept it.
 *
 * The day file's sparse index maps the range to bytes: replay starts at the
 * last write batch that began before `--from` and stops where the first batch
 * that began after `--to` starts, so at most one write batch of other Lines
 * comes along at each end. A Line's arrival time is not in the day file, only
 * its batch's: each message gets its batch's first arrival time as timestamp.
 *
 * Resumable: a progress file in stateDir holds the position after the last
 * Line of the longest delivered prefix, advanced on delivery reports.
 * Interrupted (SIGINT, SIGTERM), replay stops producing, waits for the
 * reports of what is in flight and saves the position; `--resume` continues
 * from it without producing a delivered Line again.
 */
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type Kafka from 'node-rdkafka';
import type { Config } from '../config.js';
import type { Flavor } from '../flavor.js';
import { batchTimes, byteRange, readIndex, type IndexEntry } from '../file/day-index.js';
import { daysBetween, parseTime } from '../recovery/days.js';
import { connectProducer, ERR, errorCode } from '../recovery/kafka.js';
import { CommandError, commandArgs, flavorNamed, isSystemError, runCommand } from './command.js';
import { readLossWindows } from '../recovery/losses.js';
import { progressBar } from '../recovery/progress.js';
import { Watermark, type Position } from '../recovery/watermark.js';

const usage = `Usage: scratchd replay --config FILE --flavor NAME --from TIME --to TIME [options]
       scratchd replay --config FILE --window ID [options]

Produce to the flavor's Kafka topic every Line of its day files that arrived
in [--from, --to] (ISO 8601 with Z or an offset, or ms since the epoch), in
order, each with its write batch's arrival time as timestamp. At most one
write batch of other Lines comes along at each end of the range.

  --window ID   the range and flavor of a loss window in <stateDir>/losses.jsonl
  --rate N      at most N Lines a second (default 10000)
  --dry-run     count what would be produced; connect to nothing
  --resume      continue an interrupted replay of the same range
  -h, --help    print this help
`;

const DEFAULT_RATE = 10_000;
const SAVE_EVERY_MS = 200;

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

/** One day file's part of the range. */
interface Part {
  day: string;
  path: string;
  gz: boolean;
  entries: IndexEntry[];
  start: number;
  end: number;
}

interface Progress extends Position {
  flavor: string;
  from: string;
  to: string;
  delivered: number;
  complete: boolean;
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

/** The day files the range touches, each with its byte range. */
async function plan(req: Request): Promise<Part[]> {
  const dir = join(req.config.backends.file.dir, req.flavor.name);
  const parts: Part[] = [];
  for (const day of daysBetween(req.from, req.to, req.flavor.timeZone)) {
    const base = join(dir, `${req.flavor.name}-${day}.log`);
    // The plain file while it exists: compression removes it only once the .gz is complete.
    const path = existsSync(base) ? base : existsSync(`${base}.gz`) ? `${base}.gz` : null;
    if (path === null) continue;
    const entries = await readIndex(`${base}.idx`);
    if (entries === null) throw new CommandError(`${path} has no index (${base}.idx): its Lines' arrival times are unknown`);
    const gz = path.endsWith('.gz');
    // The size now: a live file grows while we read; what comes later is not in the index yet.
    const size = gz ? Infinity : statSync(path).size;
    const { start, end } = byteRange(entries, req.from, req.to, size);
    if (start < end) parts.push({ day, path, gz, entries, start, end });
  }
  if (parts.length === 0) {
    throw new CommandError(`no Lines of ${req.flavor.name} between ${iso(req.from)} and ${iso(req.to)} in ${dir}`);
  }
  return parts;
}

/** The Lines of a part, each with its byte offsets [start, end) (end after the newline). */
async function* linesOf(part: Part, from: number): AsyncGenerator<{ json: Buffer; start: number; end: number }> {
  const stream = part.gz
    ? createReadStream(part.path).pipe(createGunzip())
    : createReadStream(part.path, { start: from, end: part.end - 1 });
  let at = part.gz ? 0 : from; // file offset of buf[0]
  let buf: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let i = 0;
      for (let nl = buf.indexOf(10, i); nl >= 0; nl = buf.indexOf(10, i)) {
        const start = at + i;
        if (start >= part.end) return;
        if (start >= from) yield { json: buf.subarray(i, nl), start, end: at + nl + 1 };
        i = nl + 1;
      }
      buf = buf.subarray(i);
      at += i;
    }
    // A Line without its newline is being written right now: not ours yet.
  } finally {
    stream.destroy();
  }
}

async function replay(req: Request): Promise<number> {
  const { flavor } = req;
  const parts = await plan(req);
  const progressFile = join(req.config.stateDir, `replay-${flavor.name}-${req.from}-${req.to}.json`);
  const saved = readProgress(progressFile);
  if (req.resume && saved === null) throw new CommandError(`no interrupted replay of this range to resume (${progressFile})`);
  if (req.resume && saved!.complete) {
    process.stdout.write(`replay ${flavor.name}: already complete (${saved!.delivered} Lines delivered); nothing to do\n`);
    return 0;
  }
  if (!req.resume && saved !== null && !saved.complete) {
    throw new CommandError(`an interrupted replay of this range delivered ${saved.delivered} Lines: add --resume to continue it, or delete ${progressFile} to start over`);
  }
  const resumeAt: Position | null = req.resume ? { day: saved!.day, offset: saved!.offset } : null;
  const startOf = (p: Part): number => (resumeAt === null || p.day > resumeAt.day ? p.start : p.day < resumeAt.day ? p.end : Math.max(p.start, resumeAt.offset));
  const todo = parts.filter((p) => startOf(p) < p.end);
  const totalBytes = todo.reduce((n, p) => n + (p.gz ? 0 : p.end - startOf(p)), 0);

  if (req.dryRun) {
    let lines = 0;
    let bytes = 0;
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
  let delivered = saved !== null && req.resume ? saved.delivered : 0;
  let deliveredNow = 0;
  let failed = 0;
  let outstanding = 0;
  let interrupted = 0;
  let dirty = false;
  const save = (complete: boolean): void => {
    const p = watermark.position;
    writeProgress(progressFile, {
      flavor: flavor.name, from: iso(req.from), to: iso(req.to),
      day: p?.day ?? '', offset: p?.offset ?? 0, delivered, complete,
    });
    dirty = false;
  };
  save(false);
  const saver = setInterval(() => { if (dirty) save(false); }, SAVE_EVERY_MS);

  producer.on('delivery-report', (err, report) => {
    outstanding--;
    if (err) failed++;
    else {
      delivered++;
      deliveredNow++;
    }
    if (watermark.settle(report.opaque as number, !err)) dirty = true;
  });
  const onSignal = (): void => {
    interrupted++;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const headers: Kafka.MessageHeader[] = [{ flavor: flavor.name }];
  const keyField = req.config.backends.kafka.key;
  const bar = progressBar(`replay ${flavor.name}`, totalBytes, 'bytes');
  const started = Date.now();
  let readBytes = 0;
  outer: for (const part of todo) {
    const timeOf = batchTimes(part.entries);
    for await (const line of linesOf(part, startOf(part))) {
      if (interrupted > 0) break outer;
      // Rate: the n-th Line goes no earlier than n/rate seconds after the start.
      const due = started + (produced * 1000) / req.rate;
      if (due - Date.now() >= 5) await sleep(due - Date.now());
      const seq = watermark.push({ day: part.day, offset: line.end });
      for (;;) {
        try {
          producer.produce(flavor.topic, null, line.json, keyOf(line.json, keyField), timeOf(line.start), seq, headers);
          outstanding++;
          break;
        } catch (err) {
          if (errorCode(err) === ERR.ERR__QUEUE_FULL && interrupted < 2) {
            await sleep(20); // librdkafka's queue is full: wait for deliveries
            continue;
          }
          failed++; // refused outright (too large, fatal): the watermark stops before it
          watermark.settle(seq, false);
          break;
        }
      }
      produced++;
      readBytes += line.end - line.start;
      if ((produced & 255) === 0) bar.update(readBytes, produced);
    }
  }
  // Whatever is in flight is delivered or fails (message.timeout.ms) before we exit; a second signal stops waiting.
  while (outstanding > 0 && interrupted < 2) {
    await new Promise<void>((r) => producer.flush(500, () => r()));
    bar.update(readBytes, produced);
  }
  bar.update(readBytes, produced);
  bar.stop();
  clearInterval(saver);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const complete = interrupted === 0 && failed === 0 && outstanding === 0;
  save(complete);
  await new Promise<void>((r) => producer.disconnect(5000, () => r()));

  const range = `${iso(req.from)} to ${iso(req.to)}`;
  process.stdout.write(`replay ${flavor.name} ${range} → topic ${flavor.topic}: ${produced} Lines produced, ` +
    `${deliveredNow} delivered, ${failed} failed${interrupted > 0 ? ', interrupted' : ''}\n`);
  if (!complete) {
    const args = `--config ${req.configFile} --flavor ${flavor.name} --from ${iso(req.from)} --to ${iso(req.to)}`;
    process.stderr.write(`scratchd replay: not complete; continue with: scratchd replay ${args} --resume\n`);
  }
  return complete ? 0 : interrupted > 0 ? 130 : 1;
}

function keyOf(json: Buffer, field: string | null): string | null {
  if (field === null) return null;
  const v = (JSON.parse(json.toString()) as Record<string, unknown>)[field];
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function readProgress(path: string): Progress | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Progress;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (isSystemError(err)) throw err;
    throw new CommandError(`${path}: unreadable replay progress (${(err as Error).message}); delete it to start over`);
  }
}

/** Replaced whole (temp file, rename): a crash leaves the old position or the new one. */
function writeProgress(path: string, p: Progress): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o750 });
  writeFileSync(`${path}.tmp`, JSON.stringify(p) + '\n');
  renameSync(`${path}.tmp`, path);
}

const iso = (t: number): string => new Date(t).toISOString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
