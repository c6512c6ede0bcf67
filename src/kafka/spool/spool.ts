/**
 * The Kafka backend's disk spool: an append-only log of Lines in segment
 * files, read from the head by the drainer, trimmed as Kafka acknowledges.
 *
 *   append()  the tail: encodes into RAM; the Lines of one event-loop turn
 *             are written to the segment in one write at the end of that
 *             turn, so a process crash (SIGKILL, OOM killer) loses none that
 *             was spilled: the page cache keeps them. Every `fsyncMs` they
 *             are fsynced, so a power loss loses at most that.
 *   read()    the next records after what was handed out, from disk.
 *   ack(seq)  a delivery report; the watermark (every record at or below it
 *             delivered) advances over contiguous acknowledged records and
 *             is persisted in the ledger at the next sync; segments wholly
 *             below the persisted watermark are then unlinked.
 *   rewind()  after a failed delivery: read again from the watermark.
 *
 * Two lanes of file I/O, each one call after another: writes (and rolls to
 * a new segment) in one, fsync, the ledger and unlinking in the other, so a
 * slow or hung fsync never holds back the writes that keep RAM small.
 *
 * Bounds: `maxBytes` of segments + unwritten appends, and `minFreeBytes`
 * left on the filesystem; past either, on a failed write, and while the
 * disk has not taken UNWRITTEN_MAX_BYTES, the newest Lines are dropped and
 * reported to `onDrop` with the reason. All file I/O is asynchronous
 * (libuv's thread pool): the event loop never waits for the disk.
 */
import { open, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { fsyncDirAsync, writeLedgerAsync } from './ledger.js';
import type { KafkaSpoolConfig } from '../../config.js';
import { recoverSpool } from './recovery.js';
import { decodeRecords, encodeRecord, HEADER_BYTES, MAX_BODY_BYTES, readU64, type SpoolRecord } from './record.js';
import { segmentName, type SegmentInfo } from './segment.js';

export type SpoolConfig = KafkaSpoolConfig;

export type SpoolDropReason = 'spool_full' | 'disk_full' | 'spool_error';

export type DropListener = (reason: SpoolDropReason, flavor: string, time: number) => void;

/** Read this much of a segment at a time. */
const READ_CHUNK = 1 << 20;

/**
 * Appends the disk has not taken yet, at most: a write that hangs (a dead
 * NFS server, a failing disk) must not let RAM grow to maxBytes.
 */
export const UNWRITTEN_MAX_BYTES = 16 << 20;

interface Outstanding {
  seq: number;
  time: number;
  acked: boolean;
}

interface Meta {
  flavor: string;
  time: number;
}

export class Spool {
  /** Recovery done: append/read may be used. */
  ready = false;
  /** Unacknowledged records, written or not. */
  records = 0;
  /** Bytes of segment files on disk. */
  diskBytes = 0;
  spilled = 0;
  drained = 0;
  readonly drops: Record<SpoolDropReason, number> = { spool_full: 0, disk_full: 0, spool_error: 0 };
  quarantined = 0;

  private segments: SegmentInfo[] = [];
  private acked = 0;
  private ledgerAcked = -1;
  private lastSeq = 0;
  private tail: FileHandle | null = null;
  /** The tail has writes not yet fsynced. */
  private tailDirty = false;
  /** Former tails (rolled or failed): fsynced and closed by the next sync. */
  private retired: FileHandle[] = [];
  /** A segment was created: the directory needs an fsync. */
  private dirDirty = false;
  private pending: Buffer[] = [];
  private pendingMeta: Meta[] = [];
  private pendingBytes = 0;
  /** A batch taken from `pending` is being written (not yet readable, no longer in pending). */
  private inWrite = false;
  private writeKicked = false;
  private writing: Promise<void> | null = null;
  private syncing: Promise<void> | null = null;
  private freeBytes = Infinity;
  private outstanding: Outstanding[] = [];
  private outHead = 0;
  private outUnacked = 0;
  /** Highest sequence handed out by read() or handOver(). */
  private handedOut = 0;
  /** Handed over from RAM, then their write failed: lost unless Kafka reports them delivered. */
  private unwrittenOut = new Map<number, Meta>();
  private skip = new Set<number>();
  private readSeg = 0;
  private readOffset = 0;
  private reader: { name: string; fh: FileHandle } | null = null;
  /** The part of a segment read last (see load()). */
  private chunk: { name: string; from: number; buf: Buffer } | null = null;
  /** read() and unlinkDelivered() exclude each other: one moves the read position, the other the segments under it. */
  private segLock: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(readonly config: SpoolConfig, private readonly log: Logger, private readonly onDrop: DropListener) {}

  /** Recover what a previous run left; then appends are fsynced every fsyncMs. */
  async open(): Promise<void> {
    const r = await recoverSpool(this.config.dir);
    this.segments = r.segments;
    this.acked = r.acked;
    this.handedOut = r.acked;
    this.lastSeq = r.lastSeq;
    this.quarantined = r.quarantined;
    this.records = r.segments.reduce((n, s) => n + s.unacked, 0);
    this.diskBytes = r.segments.reduce((n, s) => n + s.bytes, 0);
    for (const p of r.problems) this.log.error({ dir: this.config.dir }, `kafka spool: ${p}`);
    this.log.info({ dir: this.config.dir, records: this.records, bytes: this.diskBytes, segments: this.segments.length,
      ledger: r.ledger, quarantined: r.quarantined }, 'kafka spool opened');
    await this.refreshFree();
    this.ready = true;
    this.timer = setInterval(() => { if (this.syncing === null) void this.sync(); }, this.config.fsyncMs);
    this.timer.unref(); // the server keeps the process alive, not the spool
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Appends not yet written to a segment, in bytes. */
  get unwrittenBytes(): number {
    return this.pendingBytes + (this.inWrite ? this.writingBytes : 0);
  }

  private writingBytes = 0;
  private stallLogged = false;

  /** Nothing in the spool: every record appended has been acknowledged (or dropped). */
  isEmpty(): boolean {
    if (this.records <= 0) return true;
    // A record skipped as damaged while reading is not counted out of
    // `records` (how many a damaged run held is unknown): everything read,
    // reported and written is empty too.
    if (this.outUnacked === 0 && this.pending.length === 0 && !this.inWrite && this.readAtEnd()) {
      this.records = 0;
      return true;
    }
    return false;
  }

  private readAtEnd(): boolean {
    const last = this.segments.length - 1;
    return last < 0 || (this.readSeg === last && this.readOffset >= this.segments[last]!.bytes);
  }

  /** Arrival time of the oldest unacknowledged record (of its segment's first, when not yet read), or null. */
  oldest(): number | null {
    if (this.records === 0) return null;
    for (let i = this.outHead; i < this.outstanding.length; i++) if (!this.outstanding[i]!.acked) return this.outstanding[i]!.time;
    for (const s of this.segments) if (s.lastSeq > this.acked && s.oldest !== null) return s.oldest;
    return this.pendingMeta[0]?.time ?? null;
  }

  /** Take a Line at the tail; false (and onDrop) when a bound says no. */
  append(flavor: string, time: number, payload: Buffer): boolean {
    const bytes = HEADER_BYTES + 17 + flavor.length + payload.length;
    if (this.closed) return this.drop('spool_error', flavor, time);
    if (bytes > MAX_BODY_BYTES || this.diskBytes + this.unwrittenBytes + bytes > this.config.maxBytes) return this.drop('spool_full', flavor, time);
    if (this.freeBytes - this.unwrittenBytes - bytes < this.config.minFreeBytes) return this.drop('disk_full', flavor, time);
    if (this.unwrittenBytes > 0 && this.unwrittenBytes + bytes > UNWRITTEN_MAX_BYTES) {
      if (!this.stallLogged) {
        this.stallLogged = true; // once per stall: the backend counts and logs each drop, rate-limited
        this.log.error({ unwritten: this.unwrittenBytes }, 'kafka spool: the disk does not take writes, newest Lines dropped');
      }
      return this.drop('spool_error', flavor, time);
    }
    this.pending.push(encodeRecord({ seq: ++this.lastSeq, time, flavor, payload }));
    this.pendingMeta.push({ flavor, time });
    this.pendingBytes += bytes;
    this.records++;
    this.spilled++;
    this.kickWrite();
    return true;
  }

  private drop(reason: SpoolDropReason, flavor: string, time: number): false {
    this.drops[reason]++;
    this.onDrop(reason, flavor, time);
    return false;
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

  /** Write what was appended, fsync it, persist the watermark, unlink what is delivered. */
  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing;
    this.startWriter();
    await this.writing;
    while (this.syncing !== null) await this.syncing;
    await this.sync();
  }

  /** fsync what was written, persist the watermark, unlink what is delivered. One at a time. */
  private sync(): Promise<void> {
    if (this.syncing !== null) return this.syncing;
    this.syncing = this.syncOnce().catch((err: unknown) => {
      this.log.error({ err: (err as Error).message, code: (err as NodeJS.ErrnoException).code }, 'kafka spool: sync failed');
    }).finally(() => { this.syncing = null; });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
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
      await fsyncDirAsync(this.config.dir).catch((err: unknown) => {
        this.dirDirty = true;
        throw err;
      });
    }
    await this.refreshFree();
    if (this.acked > this.ledgerAcked) {
      const acked = this.acked;
      // Before any segment goes: a crash between the two leaves segments the
      // ledger says are delivered (deleted at the next start), never a
      // ledger behind files already gone.
      await writeLedgerAsync(this.config.dir, { acked });
      this.ledgerAcked = acked;
    }
    await this.unlinkDelivered();
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

  private async refreshFree(): Promise<void> {
    try {
      const s = await statfs(this.config.dir);
      this.freeBytes = s.bavail * s.bsize;
    } catch {
      this.freeBytes = Infinity; // no answer: the write itself will tell
    }
  }

  private async writePending(): Promise<void> {
    const batch = this.pending;
    const meta = this.pendingMeta;
    this.writingBytes = this.pendingBytes;
    this.pending = [];
    this.pendingMeta = [];
    this.pendingBytes = 0;
    this.inWrite = true;
    try {
      // Each segment gets what fits below segmentBytes (at least one record).
      let from = 0;
      while (from < batch.length) {
        const seg = this.segments[this.segments.length - 1];
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
        const s = this.segments[this.segments.length - 1]!;
        s.oldest ??= meta[from]!.time;
        from = to;
      }
    } finally {
      this.inWrite = false;
      this.writingBytes = 0;
      this.stallLogged = false;
    }
  }

  /**
   * Records whose write failed: dropped, except those already handed over
   * from RAM (handOver()), which Kafka may still deliver; they count as
   * dropped only if a rewind finds them gone.
   */
  private lost(batch: Buffer[], meta: Meta[], reason: SpoolDropReason): void {
    for (let i = 0; i < batch.length; i++) {
      const seq = readU64(batch[i]!, HEADER_BYTES);
      if (seq <= this.acked || this.outstanding.some((o) => o.seq === seq && o.acked)) continue; // delivered already
      if (this.skip.delete(seq)) {
        // Delivered before a rewind, and now never read again: counted out here.
        this.records--;
        continue;
      }
      if (seq <= this.handedOut) {
        this.unwrittenOut.set(seq, meta[i]!);
        continue;
      }
      this.records--;
      this.spilled--;
      this.drop(reason, meta[i]!.flavor, meta[i]!.time);
    }
  }

  /** Write one group into the tail (rolling first when it is full); the drop reason when it failed, else null. */
  private async writeGroup(batch: Buffer[], bytes: number): Promise<SpoolDropReason | null> {
    const firstSeq = readU64(batch[0]!, HEADER_BYTES);
    let seg = this.segments[this.segments.length - 1];
    let before: number | null = null;
    try {
      if (this.tail === null || seg === undefined || seg.bytes >= this.config.segmentBytes) {
        if (this.tail !== null) this.retired.push(this.tail); // fsynced and closed by the next sync
        this.tail = null;
        const name = segmentName(firstSeq);
        const fh = await open(join(this.config.dir, name), 'a', 0o640);
        this.tail = fh;
        this.dirDirty = true;
        seg = { name, firstSeq, lastSeq: firstSeq - 1, bytes: 0, unacked: 0, oldest: null };
        this.segments.push(seg);
      }
      // Only from here can a failure have left bytes of this group in the
      // file; what was there before is whole records, never taken back.
      before = seg.bytes;
      let written = 0;
      while (written < bytes) {
        this.tailDirty = true;
        const { bytesWritten } = await this.tail.writev(written === 0 ? batch : [Buffer.concat(batch).subarray(written)]);
        written += bytesWritten;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const reason: SpoolDropReason = code === 'ENOSPC' || code === 'EDQUOT' ? 'disk_full' : 'spool_error';
      this.log.error({ err: (err as Error).message, code }, 'kafka spool: write failed, newest Lines dropped');
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
        const i = this.segments.indexOf(seg);
        if (i >= 0) {
          this.segments.splice(i, 1);
          if (this.readSeg > i) this.readSeg--;
          else if (this.readSeg === i && i > 0) {
            // It was read to its (empty) end: the end of the one before.
            this.readSeg = i - 1;
            this.readOffset = this.segments[i - 1]!.bytes;
          }
        }
        await unlink(join(this.config.dir, seg.name)).catch(() => {});
      }
      return reason;
    }
    seg.bytes += bytes;
    seg.lastSeq = readU64(batch[batch.length - 1]!, HEADER_BYTES);
    seg.unacked += batch.length;
    this.diskBytes += bytes;
    return null;
  }

  /** Run fn while neither a read nor an unlink is under way. */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.segLock !== null) await this.segLock;
    let release!: () => void;
    this.segLock = new Promise((r) => { release = r; });
    try {
      return await fn();
    } finally {
      this.segLock = null;
      release();
    }
  }

  /** Segments wholly at or below the persisted watermark; the tail too once nothing waits to be written to it. */
  private async unlinkDelivered(): Promise<void> {
    if (this.segments.length === 0 || this.segments[0]!.lastSeq > this.ledgerAcked) return;
    await this.exclusive(async () => {
      let removed = false;
      while (this.segments.length > 0) {
        const s = this.segments[0]!;
        if (s.lastSeq > this.ledgerAcked) break;
        if (this.segments.length === 1 && this.tail !== null) {
          if (this.pending.length > 0 || this.inWrite) break; // they go into this segment
          const fh = this.tail;
          this.tail = null;
          this.tailDirty = false;
          await fh.close().catch(() => {});
        }
        if (this.reader?.name === s.name) {
          const fh = this.reader.fh;
          this.reader = null;
          await fh.close().catch(() => {});
        }
        if (this.chunk?.name === s.name) this.chunk = null;
        await unlink(join(this.config.dir, s.name)).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        });
        removed = true;
        // A write may have added a segment meanwhile (at the end): remove this one by identity.
        this.segments.splice(this.segments.indexOf(s), 1);
        this.diskBytes -= s.bytes;
        if (this.readSeg === 0) this.readOffset = 0; // it was being read: the next starts at 0
        else this.readSeg--;
      }
      if (removed) await fsyncDirAsync(this.config.dir);
    });
  }

  /**
   * Up to `max` records after the ones handed out, from written segments
   * (appends not yet written come after the write at the end of this turn).
   */
  read(max: number): Promise<SpoolRecord[]> {
    return this.exclusive(() => this.readLocked(max));
  }

  private async readLocked(max: number): Promise<SpoolRecord[]> {
    const out: SpoolRecord[] = [];
    while (out.length < max) {
      const seg = this.segments[this.readSeg];
      if (seg === undefined) return out;
      if (this.readOffset >= seg.bytes) {
        if (this.readSeg < this.segments.length - 1) {
          this.readSeg++;
          this.readOffset = 0;
          continue;
        }
        return out;
      }
      let c = this.chunk;
      if (c === null || c.name !== seg.name || this.readOffset < c.from || this.readOffset >= c.from + c.buf.length) {
        c = await this.load(seg, this.readOffset, READ_CHUNK);
      }
      let d = decodeRecords(c.buf, this.readOffset - c.from, max - out.length);
      if (d.records.length === 0 && d.problem === 'truncated') {
        // The next record runs past the chunk (or is larger than one): read
        // again from its start, at least the whole record.
        const start = this.readOffset - c.from;
        const need = c.buf.length - start >= HEADER_BYTES ? HEADER_BYTES + c.buf.readUInt32LE(start) : READ_CHUNK;
        if ((start > 0 || need > c.buf.length) && this.readOffset + need <= seg.bytes) {
          c = await this.load(seg, this.readOffset, Math.max(READ_CHUNK, need));
          d = decodeRecords(c.buf, 0, max - out.length);
        }
      }
      if (d.records.length === 0) {
        // Damaged after it was written (recovery checked it at start). With
        // its length intact (a bad checksum), only this record is skipped;
        // a bad length leaves no way to the next: the rest of the segment.
        const start = this.readOffset - c.from;
        const len = c.buf.length - start >= HEADER_BYTES ? c.buf.readUInt32LE(start) : 0;
        const one = d.problem === 'checksum' && this.readOffset + HEADER_BYTES + len <= seg.bytes;
        this.log.error({ segment: seg.name, offset: this.readOffset, problem: d.problem },
          one ? 'kafka spool: unreadable record skipped' : 'kafka spool: unreadable record, rest of segment skipped');
        this.quarantined++;
        // Its sequence, if the flip spared it: counted out unless already delivered.
        const seq = one && len >= 8 ? readU64(c.buf, start + HEADER_BYTES) : 0;
        if (seq > this.acked && seq <= this.lastSeq) {
          this.skip.delete(seq);
          this.records--;
        }
        this.readOffset = one ? this.readOffset + HEADER_BYTES + len : seg.bytes;
        continue;
      }
      this.readOffset = c.from + d.end;
      for (const r of d.records) {
        if (r.seq <= this.acked || r.seq <= this.handedOut) continue;
        this.handedOut = r.seq;
        if (this.skip.delete(r.seq)) {
          this.outstanding.push({ seq: r.seq, time: r.time, acked: true });
          continue;
        }
        this.outstanding.push({ seq: r.seq, time: r.time, acked: false });
        this.outUnacked++;
        out.push(r);
      }
      this.advance();
    }
    return out;
  }

  /**
   * `want` bytes of a segment from `from` (no further than its whole
   * records), kept as the chunk the next reads decode from: each read takes
   * a slice of records, so one chunk serves several.
   */
  private async load(seg: SegmentInfo, from: number, want: number): Promise<{ name: string; from: number; buf: Buffer }> {
    if (this.reader?.name !== seg.name) {
      const old = this.reader;
      this.reader = null;
      await old?.fh.close();
      this.reader = { name: seg.name, fh: await open(join(this.config.dir, seg.name), 'r') };
    }
    const buf = Buffer.allocUnsafe(Math.min(want, seg.bytes - from));
    const { bytesRead } = await this.reader.fh.read(buf, 0, buf.length, from);
    this.chunk = { name: seg.name, from, buf: buf.subarray(0, bytesRead) };
    return this.chunk;
  }

  /**
   * Whether handOver() may be used now: every written record has been read
   * and no write is under way, so the unwritten appends are exactly the
   * records not yet handed out.
   */
  canHandOver(): boolean {
    if (this.inWrite || !this.ready || this.segLock !== null) return false;
    return this.readAtEnd();
  }

  /**
   * The appends not yet written, handed out from RAM (they are still written
   * and acknowledged like any record), so the drainer can catch up with a
   * tail that keeps growing and hand the stream back to the normal path in
   * one step, in order.
   */
  handOver(): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    for (const frame of this.pending) {
      const r = decodeRecords(frame).records[0]!;
      if (r.seq <= this.handedOut) continue;
      this.handedOut = r.seq;
      this.outstanding.push({ seq: r.seq, time: r.time, acked: false });
      this.outUnacked++;
      out.push(r);
    }
    return out;
  }

  /** Kafka has the record `seq`. */
  ack(seq: number): void {
    this.unwrittenOut.delete(seq);
    for (let i = this.outHead; i < this.outstanding.length; i++) {
      const o = this.outstanding[i]!;
      if (o.seq === seq) {
        if (!o.acked) {
          o.acked = true;
          this.outUnacked--;
          this.drained++;
        }
        break;
      }
      if (o.seq > seq) break;
    }
    this.advance();
  }

  private advance(): void {
    while (this.outHead < this.outstanding.length && this.outstanding[this.outHead]!.acked) {
      this.acked = this.outstanding[this.outHead]!.seq;
      this.outHead++;
      this.records--;
    }
    if (this.outHead > 1024 && this.outHead * 2 > this.outstanding.length) {
      this.outstanding = this.outstanding.slice(this.outHead);
      this.outHead = 0;
    }
  }

  /** Records handed out and not yet acknowledged. */
  unackedOut(): number {
    return this.outUnacked;
  }

  /** After a failed delivery: hand out again everything after the watermark not yet acknowledged. */
  rewind(): void {
    for (let i = this.outHead; i < this.outstanding.length; i++) if (this.outstanding[i]!.acked) this.skip.add(this.outstanding[i]!.seq);
    // Handed over from RAM, not written, not delivered: nothing can send them again.
    for (const m of this.unwrittenOut.values()) {
      this.records--;
      this.spilled--;
      this.drop('spool_error', m.flavor, m.time);
    }
    this.unwrittenOut.clear();
    this.outstanding = [];
    this.outHead = 0;
    this.outUnacked = 0;
    this.handedOut = this.acked;
    this.readSeg = 0;
    this.readOffset = 0;
  }

  /** Sequences handed over from RAM whose write failed and that Kafka has not reported yet. */
  unwrittenHandedOver(): number[] {
    return [...this.unwrittenOut.keys()];
  }

  /** Write and fsync, persist the watermark, close files. Appends after this are dropped (spool_error). */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (!this.ready) return;
    await this.flush();
    this.closed = true;
    // Handed over, not written, no report before the stop: nothing sends them again.
    for (const m of this.unwrittenOut.values()) this.drop('spool_error', m.flavor, m.time);
    this.unwrittenOut.clear();
    for (const fh of [...this.retired.splice(0), ...(this.tail === null ? [] : [this.tail])]) await fh.close().catch(() => {});
    this.tail = null;
    const reader = this.reader;
    this.reader = null;
    await reader?.fh.close().catch(() => {});
    this.chunk = null;
  }
}
