import { fstatSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { ignoreLoss, newCounters, type Backend, type BackendHealth, type LossListener } from '../backend.js';
import { Channel } from '../channel.js';
import type { FileConfig } from '../config.js';
import type { Flavor } from '../flavor.js';
import type { Line } from '../line.js';
import { rateLimited, type Logger } from '../log.js';

/** `<dir>/<flavor>/<flavor>-<YYYY-MM-DD>.log` */
export function dayFile(dir: string, flavor: string, day: string): string {
  return join(dir, flavor, `${flavor}-${day}.log`);
}

/**
 * After a batch is written, the loop lets Lines gather for this long (counted
 * from the start of the batch) before it takes the next one, so a busy daemon
 * writes each file a bounded number of times a second rather than once per
 * event-loop turn. Each write costs a thread-pool round trip on the core that
 * serves HTTP, per call, not per byte, so fewer, larger writes cost less CPU.
 * Smaller batches keep the latency tail short, though: each is a pass on the
 * event loop and a write(2) in a pool thread that competes for the same core,
 * and a long batch makes the requests that arrive during it wait longer.
 * BENCHMARKS.md has the measurements behind this value.
 * It delays only when a Line reaches the page cache (nginx's buffered
 * access_log waits up to its flush=, 1 s typically), never an answer; the
 * wait ends early once the queue is half full or holds GATHER_LINES, and when
 * closing.
 */
const COALESCE_MS = 5;
const GATHER_LINES = 4096;
const MAX_KEPT_BUFFER = 1024 * 1024;

/**
 * Per-flavor daily log files. One loop takes batches from the channel, hands
 * each Line to the writer of its own (flavor, day) file, and waits until
 * every writer has written its part with a single append. While a write is
 * failing the loop keeps retrying it and takes nothing new, so the bounded
 * channel fills and further Lines are dropped (and counted) at `send`.
 */
export class FileBackend implements Backend {
  readonly name = 'file';
  readonly counters = newCounters();
  onLoss: LossListener = ignoreLoss;
  private readonly channel: Channel<Line>;
  private readonly writers = new Map<string, Writer>();
  /** Each flavor's most recently used writer: saves building a key per Line. */
  private readonly current = new Map<Flavor, Writer>();
  private closing = false;
  private readonly logError: ReturnType<typeof rateLimited>;
  private inBatch = 0;
  private flushing = false;
  private failing: string | null = null;
  private loop: Promise<void> = Promise.resolve();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly config: FileConfig, private readonly log: Logger) {
    this.channel = new Channel(config.queueCapacity);
    this.logError = rateLimited(log);
  }

  async start(): Promise<void> {
    this.loop = this.run();
    this.sweeper = setInterval(() => this.closeIdle(), Math.min(this.config.idleCloseMs, 60_000)).unref();
  }

  send(line: Line): boolean {
    if (this.channel.send(line)) return true;
    this.counters.dropped++;
    this.onLoss(this.name, line.flavor.name, line.time, 'queue_full');
    return false;
  }

  queued(): number {
    return this.channel.length + this.inBatch;
  }

  health(): BackendHealth {
    return this.failing === null ? { state: 'ok' } : { state: 'degraded', reason: this.failing };
  }

  reopen(): void {
    for (const w of this.writers.values()) w.reopen = true;
    this.log.info('reopening files');
  }

  async close(): Promise<void> {
    this.closing = true;
    this.channel.close();
    clearInterval(this.sweeper);
    await this.loop;
    await Promise.all([...this.writers.values()].map((w) => this.closeWriter(w)));
  }

  private async run(): Promise<void> {
    for (;;) {
      const batch = await this.channel.receive();
      if (batch.length === 0) return;
      const started = Date.now();
      this.inBatch = batch.length;
      this.flushing = true;
      const dirty: Writer[] = [];
      for (let i = 0; i < batch.length; i++) {
        const line = batch[i]!;
        const day = line.flavor.day(line.time);
        let w = this.current.get(line.flavor);
        if (w === undefined || w.day !== day) w = this.writerFor(line.flavor, day);
        if (w.pending.length === 0) dirty.push(w);
        w.pending.push(line.json);
      }
      await (dirty.length === 1 ? this.flush(dirty[0]!) : Promise.all(dirty.map((w) => this.flush(w))));
      this.flushing = false;
      this.inBatch = 0;
      const wait = started + COALESCE_MS - Date.now();
      if (wait > 0 && !this.closing) {
        await this.channel.gather(Math.max(1, Math.min(GATHER_LINES, this.channel.capacity >> 1)), wait);
      }
    }
  }

  private writerFor(flavor: Flavor, day: string): Writer {
    const key = `${flavor.name}/${day}`;
    let w = this.writers.get(key);
    if (w === undefined) {
      w = new Writer(key, flavor, day, dayFile(this.config.dir, flavor.name, day));
      this.writers.set(key, w);
    }
    this.current.set(flavor, w);
    return w;
  }

  /** Append the writer's pending Lines with one write; retry until it succeeds. */
  private async flush(w: Writer): Promise<void> {
    const lines = w.pending.length;
    // One buffer, one write(2) for the whole batch. A short write is
    // continued before anything else; a failed attempt takes its own bytes
    // back (below), so a Line is never split or left partial.
    const data = w.encode();
    let written = 0;
    for (;;) {
      // Bytes of this batch already in the file before this attempt.
      const before = written;
      try {
        const fd = await this.openWriter(w);
        while (written < data.length) {
          written += (await fd.write(data, written, data.length - written)).bytesWritten;
        }
        this.counters.persisted += lines;
        w.lastWrite = Date.now();
        if (this.failing !== null) {
          this.log.info({ file: w.path }, 'writing again');
          this.failing = null;
        }
        return;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        this.counters.failed++;
        this.failing = `${e.code ?? 'error'} ${w.path}`;
        this.logError(e.code ?? 'write', { file: w.path, err: e.message }, 'write failed; retrying');
        if (written > before && w.fd !== null) {
          // A short write (disk full) left part of a Line in the file. Take
          // this attempt's bytes back, so that no reader, and no later run
          // after a drain timeout or crash, ever finds a partial Line.
          try {
            const fd = w.fd;
            await fd.truncate((await fd.stat()).size - (written - before));
            written = before;
          } catch {
            // Keep them: the retry writes the rest right after them.
          }
        }
        await this.closeWriter(w, false);
        await new Promise((r) => setTimeout(r, this.config.retryMs));
        this.counters.retried++;
      }
    }
  }

  /**
   * The writer's open file, (re)opened when needed: first use, after an
   * error, after SIGHUP, or when the file was deleted under us (a removed
   * directory would otherwise swallow every write into an unlinked inode).
   */
  private async openWriter(w: Writer): Promise<fs.FileHandle> {
    // fstat(2) of an open file never waits for the disk: done inline it costs
    // a syscall, through the thread pool it cost a round trip per write.
    if (w.fd !== null && (w.reopen || fstatSync(w.fd.fd).nlink === 0)) await this.closeWriter(w, false);
    if (w.fd === null) {
      await fs.mkdir(join(this.config.dir, w.flavor.name), { recursive: true, mode: 0o750 });
      w.fd = await fs.open(w.path, 'a', 0o640);
      w.reopen = false;
    }
    return w.fd;
  }

  /** Close (and fsync) the file; `forget` also drops the writer from the map. */
  private async closeWriter(w: Writer, forget = true): Promise<void> {
    if (forget) {
      this.writers.delete(w.key);
      if (this.current.get(w.flavor) === w) this.current.delete(w.flavor);
    }
    const fd = w.fd;
    w.fd = null;
    if (fd === null) return;
    try {
      await fd.sync();
    } catch {
      // The data is in the page cache; a failing fsync is reported by the next write.
    }
    await fd.close().catch(() => {});
  }

  /** Close files of past days that nobody has written to for a while. */
  private closeIdle(): void {
    if (this.flushing) return;
    const now = Date.now();
    for (const w of this.writers.values()) {
      if (w.day !== w.flavor.day(now) && now - w.lastWrite >= this.config.idleCloseMs) {
        this.log.debug({ file: w.path }, 'closing idle file');
        void this.closeWriter(w);
      }
    }
  }
}

/** One (flavor, day) file and the Lines waiting for it. */
class Writer {
  fd: fs.FileHandle | null = null;
  pending: Buffer[] = [];
  lastWrite = Date.now();
  reopen = false;
  /** Reused for every batch (a writer has one write in flight at a time). */
  private buffer: Buffer | null = null;

  /**
   * The pending Lines, each with its newline, copied into a reused buffer for
   * one write. Empties `pending`.
   */
  encode(): Buffer {
    const pending = this.pending;
    let size = 0;
    for (let i = 0; i < pending.length; i++) size += pending[i]!.length + 1;
    let buf = this.buffer;
    if (buf === null || buf.length < size) {
      buf = Buffer.allocUnsafeSlow(Math.max(size, 64 * 1024));
      // Keep up to 1 MiB for next time; a larger burst gets a one-off buffer.
      this.buffer = buf.length <= MAX_KEPT_BUFFER ? buf : this.buffer;
    }
    let n = 0;
    for (let i = 0; i < pending.length; i++) {
      buf.set(pending[i]!, n);
      n += pending[i]!.length;
      buf[n++] = 10; // \n
    }
    pending.length = 0;
    return buf.subarray(0, n);
  }

  constructor(
    readonly key: string,
    readonly flavor: Flavor,
    readonly day: string,
    readonly path: string,
  ) {}
}
