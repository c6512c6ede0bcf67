/**
 * The spool's writer: the tail.
 *
 *   append()  encodes into RAM; the Lines of one event-loop turn are written
 *             to the segment in one write at the end of that turn, so a
 *             process crash (SIGKILL, OOM killer) loses none that was
 *             spilled: the page cache keeps them.
 *   sync()    fsyncs what was written (and the directory, once a segment
 *             was created), so a power loss loses at most one interval.
 *
 * Bounds: `maxBytes` of segments + unwritten appends, and `minFreeBytes`
 * left on the filesystem; past either, on a failed write, and while the
 * disk has not taken UNWRITTEN_MAX_BYTES, the newest Lines are dropped and
 * reported with the reason. All file I/O is asynchronous (libuv's thread
 * pool): the event loop never waits for the disk.
 */
import { open, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { KafkaSpoolConfig } from '../../config.js';
import type { Logger } from '../../log.js';
import { syncDir } from '../../atomic-write.js';
import type { SpoolDropReason } from './drop-reasons.js';
import type { SpoolLedger, Taken } from './ledger.js';
import { encodeRecord, HEADER_BYTES, MAX_BODY_BYTES, readU64 } from './record.js';
import { segmentName, type SegmentInfo, type Segments } from './segment.js';

/**
 * New appends the disk has not taken yet, at most, by default: a write that
 * hangs (a dead NFS server, a failing disk) must not let RAM grow to
 * maxBytes. The Kafka backend raises it to its own queue's bytes: a spill
 * at full load (tens of MB/s) must outlast an fsync, and Lines waiting for
 * the disk then hold no more RAM than they could have in that queue.
 */
export const UNWRITTEN_MAX_BYTES = 16 << 20;

/** Report a Line dropped; always false (what append() returns then). */
export type Drop = (reason: SpoolDropReason, flavor: string, time: number) => false;

export class SpoolWriter {
  /** Highest sequence given out (the next record gets lastSeq + 1). */
  private seq = 0;
  private tail: FileHandle | null = null;
  /** The tail has writes not yet fsynced. */
  private tailDirty = false;
  /** Former tails (rolled or failed): fsynced and closed by the next sync. */
  private readonly retired: FileHandle[] = [];
  /** A segment was created: the directory needs an fsync. */
  private dirDirty = false;
  private pending: Buffer[] = [];
  private pendingMeta: Taken[] = [];
  private pendingBytes = 0;
  /** Of those, bytes of Lines handed over at once from a bounded queue (append's `held`). */
  private pendingHeld = 0;
  /** A batch taken from `pending` is being written (not yet readable, no longer in pending). */
  private inWrite = false;
  private writingBytes = 0;
  private writingHeld = 0;
  private writeKicked = false;
  private writing: Promise<void> | null = null;
  private freeBytes = Infinity;
  private stallLogged = false;

  constructor(
    private readonly config: KafkaSpoolConfig,
    private readonly log: Logger,
    private readonly segments: Segments,
    private readonly ledger: SpoolLedger,
    private readonly drop: Drop,
    /** The segment at this index was removed (an empty one a failed write created). */
    private readonly removed: (index: number) => void,
    private readonly unwrittenMax = UNWRITTEN_MAX_BYTES,
  ) {}

  /** What recovery found: the highest sequence given out. */
  restore(lastSeq: number): void {
    this.seq = lastSeq;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Appends not yet written to a segment, in bytes. */
  get unwrittenBytes(): number {
    return this.pendingBytes + (this.inWrite ? this.writingBytes : 0);
  }

  /** A batch is being written: it is neither readable nor in `unwritten()`. */
  get busy(): boolean {
    return this.inWrite;
  }

  /** Appends not yet written, or being written. */
  holdsUnwritten(): boolean {
    return this.pending.length > 0 || this.inWrite;
  }

  /** The frames appended and not yet taken by a write, in order. */
  unwritten(): readonly Buffer[] {
    return this.pending;
  }

  /** Arrival time of the oldest append not yet taken by a write, or null. */
  oldestUnwritten(): number | null {
    return this.pendingMeta[0]?.time ?? null;
  }

  /**
   * Take a Line at the tail; false (and a drop) when a bound says no.
   * `held`: the Line was waiting in a bounded queue in RAM (the Kafka
   * backend's, or librdkafka's) and is handed over with the rest of it at
   * once: the unwritten bound, which stops new Lines while the disk does not
   * take writes, neither refuses it nor counts it against new Lines.
   */
  append(flavor: string, time: number, payload: Buffer, held = false): boolean {
    const bytes = HEADER_BYTES + 17 + flavor.length + payload.length;
    if (bytes > MAX_BODY_BYTES || this.segments.bytes + this.unwrittenBytes + bytes > this.config.maxBytes) return this.drop('spool_full', flavor, time);
    if (this.freeBytes - this.unwrittenBytes - bytes < this.config.minFreeBytes) return this.drop('disk_full', flavor, time);
    const fresh = this.unwrittenBytes - this.pendingHeld - (this.inWrite ? this.writingHeld : 0);
    if (!held && fresh > 0 && fresh + bytes > this.unwrittenMax) {
      if (!this.stallLogged) {
        this.stallLogged = true; // once per stall: the backend counts and logs each drop, rate-limited
        this.log.error({ unwritten: this.unwrittenBytes }, 'kafka spool: the disk does not take writes, newest Lines dropped');
      }
      return this.drop('spool_error', flavor, time);
    }
    this.pending.push(encodeRecord({ seq: ++this.seq, time, flavor, payload }));
    this.pendingMeta.push({ flavor, time });
    this.pendingBytes += bytes;
    if (held) this.pendingHeld += bytes;
    this.ledger.take();
    this.kickWrite();
    return true;
  }

  /** Write this turn's appends once the turn is over (setImmediate: after the I/O callbacks that appended). */
  private kickWrite(): void {
    if (this.writeKicked || this.writing !== null) return; // a running writer takes them next
    this.writeKicked = true;
    setImmediate(() => {
      this.writeKicked = false;
      this.startWriter();
    });
  }

  private startWriter(): void {
    if (this.writing !== null || this.pending.length === 0) return;
    this.writing = (async () => {
      while (this.pending.length > 0) await this.writePending();
    })().catch((err: unknown) => {
      this.log.error({ err }, 'kafka spool: write failed');
    }).finally(() => {
      this.writing = null;
      if (this.pending.length > 0) this.kickWrite();
    });
  }

  /** Write what was appended, now. */
  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing;
    this.startWriter();
    await this.writing;
  }

  private async writePending(): Promise<void> {
    const batch = this.pending;
    const meta = this.pendingMeta;
    this.writingBytes = this.pendingBytes;
    this.writingHeld = this.pendingHeld;
    this.pending = [];
    this.pendingMeta = [];
    this.pendingBytes = 0;
    this.pendingHeld = 0;
    this.inWrite = true;
    try {
      // Each segment gets what fits below segmentBytes (at least one record).
      let from = 0;
      while (from < batch.length) {
        const seg = this.segments.last;
        const room = this.tail === null || seg === undefined ? this.config.segmentBytes : this.config.segmentBytes - seg.bytes;
        let to = from + 1;
        let size = batch[from]!.length;
        while (to < batch.length && size + batch[to]!.length <= room) size += batch[to++]!.length;
        const failed = await this.writeGroup(batch.slice(from, to), size);
        if (failed !== null) {
          // The rest is dropped with the same reason: newest first, never older ones.
          this.lost(batch.slice(from), meta.slice(from), failed);
          return;
        }
        this.segments.last!.oldest ??= meta[from]!.time;
        from = to;
      }
    } finally {
      this.inWrite = false;
      this.writingBytes = 0;
      this.writingHeld = 0;
      this.stallLogged = false;
    }
  }

  /** Records whose write failed: dropped, unless the ledger says Kafka has them or may still. */
  private lost(batch: Buffer[], meta: Taken[], reason: SpoolDropReason): void {
    for (let i = 0; i < batch.length; i++) {
      if (this.ledger.writeFailed(readU64(batch[i]!, HEADER_BYTES), meta[i]!)) this.drop(reason, meta[i]!.flavor, meta[i]!.time);
    }
  }

  /** Write one group into the tail (rolling first when it is full); the drop reason when it failed, else null. */
  private async writeGroup(batch: Buffer[], bytes: number): Promise<SpoolDropReason | null> {
    let seg = this.segments.last;
    let before: number | null = null;
    try {
      if (this.tail === null || seg === undefined || seg.bytes >= this.config.segmentBytes) seg = await this.roll(readU64(batch[0]!, HEADER_BYTES));
      // Only from here can a failure have left bytes of this group in the
      // file; what was there before is whole records, never taken back.
      before = seg.bytes;
      let written = 0;
      while (written < bytes) {
        this.tailDirty = true;
        const { bytesWritten } = await this.tail!.writev(written === 0 ? batch : [Buffer.concat(batch).subarray(written)]);
        written += bytesWritten;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.log.error({ err: (err as Error).message, code }, 'kafka spool: write failed, newest Lines dropped');
      await this.undo(seg, before);
      return code === 'ENOSPC' || code === 'EDQUOT' ? 'disk_full' : 'spool_error';
    }
    this.segments.grew(seg, bytes, batch.length, readU64(batch[batch.length - 1]!, HEADER_BYTES));
    return null;
  }

  /** A new segment for the record `firstSeq` on: the tail from now on. */
  private async roll(firstSeq: number): Promise<SegmentInfo> {
    if (this.tail !== null) this.retired.push(this.tail); // fsynced and closed by the next sync
    this.tail = null;
    const name = segmentName(firstSeq);
    this.tail = await open(join(this.config.dir, name), 'a', 0o640);
    this.dirDirty = true;
    return this.segments.add(name, firstSeq);
  }

  /** After a failed write: take back what it left in `seg` (it held `before` bytes), and `seg` itself if it holds nothing. */
  private async undo(seg: SegmentInfo | undefined, before: number | null): Promise<void> {
    if (before !== null && this.tail !== null) {
      // Take back a partial write; if even that fails, start a new segment next time.
      try {
        await this.tail.truncate(before);
      } catch {
        this.retired.push(this.tail);
        this.tail = null;
      }
    }
    if (seg !== undefined && seg.lastSeq < seg.firstSeq) {
      // The segment just created holds nothing: do not leave it behind.
      if (this.tail !== null) this.retired.push(this.tail);
      this.tail = null;
      this.removed(this.segments.remove(seg));
      await unlink(join(this.config.dir, seg.name)).catch(() => {});
    }
  }

  /** fsync what was written (and the directory), then see how much room the filesystem has. */
  async sync(): Promise<void> {
    for (const fh of this.retired.splice(0)) {
      await this.fsync(fh);
      await fh.close().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'kafka spool: close failed'));
    }
    if (this.tail !== null && this.tailDirty) {
      this.tailDirty = false;
      await this.fsync(this.tail);
    }
    if (this.dirDirty) {
      this.dirDirty = false;
      await syncDir(this.config.dir).catch((err: unknown) => {
        this.dirDirty = true;
        throw err;
      });
    }
    await this.refreshFree();
  }

  /**
   * An fsync that fails leaves the records where they are: they are in the
   * page cache, readable and sent; only a power loss could still take them.
   */
  private async fsync(fh: FileHandle): Promise<void> {
    try {
      await fh.datasync();
    } catch (err) {
      this.log.error({ err: (err as Error).message, code: (err as NodeJS.ErrnoException).code },
        'kafka spool: fsync failed; the records stay and are sent, but a power loss may lose them');
    }
  }

  async refreshFree(): Promise<void> {
    try {
      const s = await statfs(this.config.dir);
      this.freeBytes = s.bavail * s.bsize;
    } catch {
      this.freeBytes = Infinity; // no answer: the write itself will tell
    }
  }

  /**
   * The tail's segment is delivered and about to go: close the tail, unless
   * appends are still to be written into it (false then).
   */
  async releaseTail(): Promise<boolean> {
    if (this.tail === null) return true;
    if (this.holdsUnwritten()) return false;
    const fh = this.tail;
    this.tail = null;
    this.tailDirty = false;
    await fh.close().catch(() => {});
    return true;
  }

  /** Close every file; call after a last flush and sync. */
  async close(): Promise<void> {
    for (const fh of [...this.retired.splice(0), ...(this.tail === null ? [] : [this.tail])]) await fh.close().catch(() => {});
    this.tail = null;
  }
}
