import { fstatSync, ftruncateSync, promises as fs, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Flavor } from '../flavor.js';
import type { Line } from '../line.js';
import { indexTime } from './day-index.js';
import { IndexWriter } from './index-writer.js';
import type { DayPaths } from './paths.js';
import { cutTornTail } from './torn.js';
import type { FlavorState } from './flavor-state.js';

const MAX_KEPT_BUFFER = 1024 * 1024;

/** What a writer reports to the backend that routes Lines to it. */
export interface WriterHost {
  readonly retryMs: number;
  written(w: DayWriter, lines: number, bytes: number): void;
  failed(w: DayWriter, err: NodeJS.ErrnoException): void;
  retrying(w: DayWriter): void;
  recovered(w: DayWriter): void;
  indexFailed(w: DayWriter, err: NodeJS.ErrnoException): void;
  torn(w: DayWriter, bytes: number): void;
}

/**
 * The writer of one (flavor, day) file. It writes its pending Lines with one
 * append per batch, each followed by one 16-byte index entry; a failing write is retried
 * every `retryMs` by this writer alone, so a broken flavor never holds up
 * another. At most one write in flight per writer.
 */
export class DayWriter {
  fd: fs.FileHandle | null = null;
  /** Size of the day file as this writer knows it: where the next batch starts. */
  private size = 0;
  pending: Buffer[] = [];
  /** Arrival time of the first pending Line: the index entry of the next batch. */
  private pendingTime = 0;
  /** Latest arrival time among the pending Lines. */
  private pendingLast = 0;
  /** The tail of an existing file is checked once, at this writer's first open. */
  private tailChecked = false;
  /** Latest arrival time among Lines written by this writer (for the manifest); 0 when none. */
  lastTime = 0;
  /** Lines in the batch being written (or retried), and their first and latest arrival times. */
  inFlight = 0;
  private inFlightTime = 0;
  private inFlightLast = 0;
  failing = false;
  /** The error code of the last failed attempt, while failing. */
  private failedWith: string | undefined;
  reopen = false;
  lastWrite = Date.now();
  private running: Promise<void> | null = null;
  private buffer: Buffer | null = null;
  private readonly index = new IndexWriter((err) => this.host.indexFailed(this, err));

  constructor(
    readonly key: string,
    readonly state: FlavorState,
    readonly day: string,
    readonly paths: DayPaths,
    private readonly host: WriterHost,
  ) {}

  get flavor(): Flavor {
    return this.state.flavor;
  }

  /**
   * The drain timed out: tell `lost` of the Lines held (in flight and
   * pending), as two arrival times and a count each, since a writer keeps
   * bytes, not Lines.
   */
  abandon(lost: (time: number, count: number) => void): void {
    const report = (first: number, last: number, n: number): void => {
      if (n === 0) return;
      lost(first, 1);
      if (n > 1) lost(last, n - 1);
    };
    report(this.inFlightTime, this.inFlightLast, this.inFlight);
    report(this.pendingTime, this.pendingLast, this.pending.length);
  }

  /** Lines held: pending plus the batch in flight. */
  get held(): number {
    return this.pending.length + this.inFlight;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  push(line: Line): void {
    if (this.pending.length === 0) this.pendingTime = line.time;
    this.pending.push(line.json);
    if (line.time > this.pendingLast) this.pendingLast = line.time;
    this.state.held++;
    this.state.heldBytes += line.json.length + 1;
  }

  /**
   * Write what is pending unless a write is already under way. While the file
   * is open and healthy the write(2) is made here, on this thread, in the
   * event-loop turn the Lines were answered in: a pool write would reach
   * the disk only once a pool thread gets a core, and a process crash
   * meanwhile (SIGKILL, the OOM killer) would lose Lines already answered. A
   * write to an open file goes to the page cache; only opening, a failing
   * file and its retries go through the pool (writeLoop()), their index entries
   * with them.
   */
  kick(): void {
    if (this.running !== null || this.pending.length === 0) return;
    if (this.fd !== null && !this.failing && !this.reopen && this.writeNow()) return;
    this.running = this.writeLoop();
  }

  /** The pending Lines in one write(2), now; false (nothing changed) when the async path must do it. */
  private writeNow(): boolean {
    const fd = this.fd!.fd;
    // A file deleted under us is reopened by the async path.
    if (fstatSync(fd).nlink === 0) return false;
    const lines = this.pending.length;
    // Never before an entry already written: a replay's byte ranges rely on it (day-index.ts).
    const time = indexTime(this.pendingTime, this.lastTime);
    const last = this.pendingLast;
    const data = this.encode();
    const start = this.size;
    let written = 0;
    try {
      while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    } catch {
      // Take this attempt's bytes back (no partial Line is ever left) and
      // give the whole batch to the async path, which fails, reports and
      // retries as for any write.
      try {
        if (written > 0) ftruncateSync(fd, start);
      } catch {
        // The retry then appends after them, as writeLoop() does when its truncate fails.
        this.size += written;
        this.retryBatch(data.subarray(written), lines, time, last, start, data.length);
        return true;
      }
      this.retryBatch(data, lines, time, last, null);
      return true;
    }
    this.size += written;
    this.lastWrite = Date.now();
    if (last > this.lastTime) this.lastTime = last;
    this.state.held -= lines;
    this.state.heldBytes -= data.length;
    this.host.written(this, lines, data.length);
    this.index.appendNow(time, start);
    return true;
  }

  /**
   * A batch the fast path could not write (or finish: `start` is then where
   * its kept bytes begin): the async path writes it first, then what is pending.
   */
  private retryBatch(data: Buffer, lines: number, time: number, last: number, start: number | null, bytes = data.length): void {
    const copy = Buffer.from(data); // the reused buffer is the next batch's
    this.running = (async () => {
      try {
        this.inFlight = lines;
        this.inFlightTime = time;
        this.inFlightLast = last;
        const at = await this.writeBatch(copy);
        const begins = start ?? at;
        if (last > this.lastTime) this.lastTime = last;
        this.inFlight = 0;
        this.state.held -= lines;
        this.state.heldBytes -= bytes;
        this.host.written(this, lines, bytes);
        this.index.append(time, begins);
      } finally {
        this.running = null;
      }
    })().then(() => this.kick());
  }

  /** Resolves once nothing is pending or in flight. */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
    await this.index.idle();
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const lines = this.pending.length;
        const time = indexTime(this.pendingTime, this.lastTime);
        const last = this.pendingLast;
        const data = this.encode();
        this.inFlight = lines;
        this.inFlightTime = time;
        this.inFlightLast = last;
        const start = await this.writeBatch(data);
        if (last > this.lastTime) this.lastTime = last;
        this.inFlight = 0;
        this.state.held -= lines;
        this.state.heldBytes -= data.length;
        // Counted as soon as the bytes are in the file, before the index entry.
        this.host.written(this, lines, data.length);
        // The index entry follows on its own chain, so the next batch's data
        // need not wait for it: a Line's way to write(2) is one write long.
        this.index.append(time, start);
      }
    } finally {
      this.running = null;
    }
  }

  /** Append one batch; retry (alone) until it succeeds. Returns the offset where it starts. */
  private async writeBatch(data: Buffer): Promise<number> {
    // One buffer, one write(2) for the whole batch. A short write is
    // continued before anything else; a failed attempt takes its own bytes
    // back, so a Line is never split or left partial.
    let written = 0;
    for (;;) {
      const before = written;
      try {
        if (this.failedWith === 'ENOSPC') await this.roomFor(data.length - written);
        const fd = await this.open();
        const start = this.size - written;
        while (written < data.length) {
          const n = (await fd.write(data, written, data.length - written)).bytesWritten;
          written += n;
          this.size += n;
        }
        this.lastWrite = Date.now();
        if (this.failing) {
          this.failing = false;
          this.failedWith = undefined;
          this.state.failingWriters--;
          this.host.recovered(this);
        }
        return start;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        this.failedWith = e.code;
        if (!this.failing) {
          this.failing = true;
          this.state.failingWriters++;
        }
        this.host.failed(this, e);
        if (written > before && this.fd !== null) {
          // A short write (disk full) left part of a Line in the file. Take
          // this attempt's bytes back, so that no reader, and no later run
          // after a drain timeout or crash, ever finds a partial Line.
          try {
            await this.fd.truncate(this.size - (written - before));
            this.size -= written - before;
            written = before;
          } catch {
            // Keep them: the retry writes the rest right after them.
          }
        }
        await this.close(false);
        await new Promise((r) => setTimeout(r, this.host.retryMs));
        this.host.retrying(this);
      }
    }
  }

  /**
   * Throws ENOSPC, without touching the file, while its filesystem has less
   * room than `bytes`. Only on a retry after a full disk: each attempt that
   * meets a full disk leaves a partial Line in the file until it is taken
   * back, which a reader (tail -f, a shipper) can see; asking statfs(2) first
   * keeps a long outage of disk space down to that first attempt. The blocks
   * root may use (f_bfree) count for root, the others' (f_bavail) otherwise.
   */
  private async roomFor(bytes: number): Promise<void> {
    const s = await fs.statfs(dirname(this.paths.log));
    const blocks = process.getuid?.() === 0 ? s.bfree : s.bavail;
    if (blocks * s.bsize >= bytes) return;
    throw Object.assign(new Error(`ENOSPC: ${blocks * s.bsize} bytes free, ${bytes} to write (statfs)`), { code: 'ENOSPC' });
  }

  /**
   * The open day file, (re)opened when needed: first use, after an error,
   * after SIGHUP, or when the file was deleted under us (a removed directory
   * would otherwise swallow every write into an unlinked inode).
   */
  private async open(): Promise<fs.FileHandle> {
    // fstat(2) of an open file never waits for the disk: done inline it costs
    // a syscall, through the thread pool it cost a round trip per write.
    if (this.fd !== null && (this.reopen || fstatSync(this.fd.fd).nlink === 0)) await this.close(false);
    if (this.fd === null) {
      await fs.mkdir(dirname(this.paths.log), { recursive: true, mode: 0o750 });
      const fd = await fs.open(this.paths.log, 'a+', 0o640);
      try {
        this.size = (await fd.stat()).size;
        if (!this.tailChecked) {
          // A crash mid-write in an earlier run; later reopens follow our own writes.
          const { size, cut } = await cutTornTail(fd, this.size, this.paths.torn);
          if (cut > 0) this.host.torn(this, cut);
          this.size = size;
          this.tailChecked = true;
        }
      } catch (err) {
        await fd.close().catch(() => {});
        throw err;
      }
      this.fd = fd;
      this.reopen = false;
      await this.index.open(this.paths.idx, this.size);
    }
    return this.fd;
  }

  /**
   * Close the files; `sync` fsyncs them first. Returns the day file's fsync
   * error, if any: its written Lines may then not be on disk, which the
   * caller must report (a shutdown must not say "drained"). An index's
   * fsync error costs only precision.
   */
  async close(sync = true): Promise<NodeJS.ErrnoException | null> {
    await this.index.idle();
    const fd = this.fd;
    this.fd = null;
    let failed: NodeJS.ErrnoException | null = null;
    if (fd !== null) {
      if (sync) await fd.sync().catch((err: NodeJS.ErrnoException) => { failed = err; });
      await fd.close().catch(() => {});
    }
    await this.index.close(sync);
    return failed;
  }

  /**
   * The pending Lines, each with its newline, copied into a reused buffer for
   * one write. Empties `pending`.
   */
  private encode(): Buffer {
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
}
