import { ftruncateSync, promises as fs, writeSync } from 'node:fs';
import { ENTRY_BYTES, encodeEntry, repairIndex } from './day-index.js';

/**
 * A day file's index (day-index.ts): one 16-byte entry per written batch, in
 * batch order. A failed entry costs a reader only precision (it starts or
 * stops a batch further out), never Lines, so it is reported and the batch
 * still counts as written; a short entry is taken back so the later ones
 * stay aligned.
 */
export class IndexWriter {
  private fd: fs.FileHandle | null = null;
  private size = 0;
  /** Entries appended through the pool, in order (never rejects). */
  private chain: Promise<void> = Promise.resolve();
  /** Entries on that chain not yet written: an inline entry must not pass them. */
  private queued = 0;
  private readonly entry = Buffer.alloc(ENTRY_BYTES);

  constructor(private readonly failed: (err: NodeJS.ErrnoException) => void) {}

  /** Opens the index beside a day file of `dataSize` bytes, cutting entries past it; a failure leaves it closed. */
  async open(path: string, dataSize: number): Promise<void> {
    try {
      this.fd = await fs.open(path, 'a+', 0o640);
      this.size = await repairIndex(this.fd, dataSize);
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException);
      await this.fd?.close().catch(() => {});
      this.fd = null;
    }
  }

  /**
   * An entry written now, like the batch it follows, unless entries are
   * still queued before it. The data's write is inline for durability; the
   * index's pool round trip per batch was most of its cost (BENCHMARKS.md).
   */
  appendNow(time: number, offset: number): void {
    const fd = this.fd;
    if (fd === null) return;
    if (this.queued > 0) return this.append(time, offset);
    let n = 0;
    try {
      n = writeSync(fd.fd, encodeEntry(this.entry, time, offset), 0, ENTRY_BYTES);
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException);
    }
    if (n === ENTRY_BYTES) {
      this.size += ENTRY_BYTES;
      return;
    }
    try {
      ftruncateSync(fd.fd, this.size);
    } catch {
      // The next open's repairIndex() cuts it.
    }
  }

  /** An entry through the pool, after those queued before it: the async write path's. */
  append(time: number, offset: number): void {
    this.queued++;
    this.chain = this.chain.then(() => this.write(time, offset)).finally(() => {
      this.queued--;
    });
  }

  private async write(time: number, offset: number): Promise<void> {
    const fd = this.fd;
    if (fd === null) return;
    try {
      const { bytesWritten } = await fd.write(encodeEntry(this.entry, time, offset), 0, ENTRY_BYTES);
      if (bytesWritten === ENTRY_BYTES) {
        this.size += ENTRY_BYTES;
        return;
      }
      await fd.truncate(this.size);
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException);
      await fd.truncate(this.size).catch(() => {});
    }
  }

  /** Resolves once every queued entry is written or failed. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Close after the queued entries; `sync` fsyncs first. Its errors cost only precision. */
  async close(sync: boolean): Promise<void> {
    await this.chain;
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return;
    if (sync) await fd.sync().catch(() => {});
    await fd.close().catch(() => {});
  }
}
