/**
 * The Kafka backend's disk spool: an append-only log of Lines in segment
 * files, read from the head by the drainer, trimmed as Kafka acknowledges.
 *
 *   append()  the tail: encodes into RAM; a timer writes and fsyncs every
 *             `fsyncMs` (and fsyncs a segment before rolling to the next),
 *             so a crash loses at most the last `fsyncMs` of appends.
 *   read()    the next records after what was handed out, from disk.
 *   ack(seq)  a delivery report; the watermark (every record at or below it
 *             delivered) advances over contiguous acknowledged records and
 *             is persisted in the ledger at the next flush; segments wholly
 *             below the persisted watermark are then unlinked.
 *   rewind()  after a failed delivery: read again from the watermark.
 *
 * Bounds: `maxBytes` of segments + unwritten appends, and `minFreeBytes`
 * left on the filesystem; past either, and on a failed write, the newest
 * Lines are dropped and reported to `onDrop` with the reason. All file I/O
 * is asynchronous (libuv's thread pool): the event loop never waits for the
 * disk.
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

interface Outstanding {
  seq: number;
  time: number;
  acked: boolean;
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
  private pending: Buffer[] = [];
  private pendingMeta: { flavor: string; time: number }[] = [];
  private pendingBytes = 0;
  private freeBytes = Infinity;
  private outstanding: Outstanding[] = [];
  private outHead = 0;
  private outUnacked = 0;
  /** Highest sequence handed out by read() or handOver(). */
  private handedOut = 0;
  private skip = new Set<number>();
  private readSeg = 0;
  private readOffset = 0;
  private reader: { name: string; fh: FileHandle } | null = null;
  /** The part of a segment read last (see load()). */
  private chunk: { name: string; from: number; buf: Buffer } | null = null;
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(readonly config: SpoolConfig, private readonly log: Logger, private readonly onDrop: DropListener) {}

  /** Recover what a previous run left; then appends are flushed every fsyncMs. */
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
    this.timer = setInterval(() => void this.flush(), this.config.fsyncMs);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Nothing in the spool: every record appended has been acknowledged. */
  isEmpty(): boolean {
    return this.records === 0;
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
    if (bytes > MAX_BODY_BYTES || this.diskBytes + this.pendingBytes + bytes > this.config.maxBytes) return this.drop('spool_full', flavor, time);
    if (this.freeBytes - this.pendingBytes - bytes < this.config.minFreeBytes) return this.drop('disk_full', flavor, time);
    this.pending.push(encodeRecord({ seq: ++this.lastSeq, time, flavor, payload }));
    this.pendingMeta.push({ flavor, time });
    this.pendingBytes += bytes;
    this.records++;
    this.spilled++;
    return true;
  }

  private drop(reason: SpoolDropReason, flavor: string, time: number): false {
    this.drops[reason]++;
    this.onDrop(reason, flavor, time);
    return false;
  }

  /** Write and fsync what was appended, persist the watermark, unlink what is delivered. One at a time. */
  flush(): Promise<void> {
    if (this.flushing !== null) return this.flushing;
    this.flushing = this.flushOnce().catch((err: unknown) => {
      this.log.error({ err }, 'kafka spool: flush failed');
    }).finally(() => { this.flushing = null; });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.pending.length > 0) await this.writePending();
    await this.refreshFree();
    if (this.acked > this.ledgerAcked) {
      const acked = this.acked;
      await writeLedgerAsync(this.config.dir, { acked });
      this.ledgerAcked = acked;
      await this.unlinkDelivered();
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
    this.pending = [];
    this.pendingMeta = [];
    this.pendingBytes = 0;
    // Each segment gets what fits below segmentBytes (at least one record).
    let from = 0;
    while (from < batch.length) {
      const seg = this.segments[this.segments.length - 1];
      const room = this.tail === null || seg === undefined ? this.config.segmentBytes : this.config.segmentBytes - seg.bytes;
      let to = from + 1;
      let size = batch[from]!.length;
      while (to < batch.length && size + batch[to]!.length <= room) size += batch[to++]!.length;
      if (!(await this.writeGroup(batch.slice(from, to), meta.slice(from, to), size))) {
        // The rest is dropped with the same reason, in writeGroup's words.
        for (const m of meta.slice(to)) this.drop(this.lastWriteFailure, m.flavor, m.time);
        this.records -= batch.length - to;
        this.spilled -= batch.length - to;
        return;
      }
      from = to;
    }
  }

  private lastWriteFailure: SpoolDropReason = 'spool_error';

  /** Write one group into the tail (rolling first when it is full); false when it failed and was dropped. */
  private async writeGroup(batch: Buffer[], meta: { flavor: string; time: number }[], bytes: number): Promise<boolean> {
    const firstSeq = readU64(batch[0]!, HEADER_BYTES);
    let seg = this.segments[this.segments.length - 1];
    let before = 0;
    try {
      if (this.tail === null || seg === undefined || seg.bytes >= this.config.segmentBytes) {
        if (this.tail !== null) {
          await this.tail.sync(); // fsync on roll
          await this.tail.close();
          this.tail = null;
        }
        const name = segmentName(firstSeq);
        this.tail = await open(join(this.config.dir, name), 'a', 0o640);
        await fsyncDirAsync(this.config.dir);
        seg = { name, firstSeq, lastSeq: firstSeq - 1, bytes: 0, unacked: 0, oldest: null };
        this.segments.push(seg);
      }
      before = seg.bytes;
      let written = 0;
      while (written < bytes) {
        const { bytesWritten } = await this.tail.writev(written === 0 ? batch : [Buffer.concat(batch).subarray(written)]);
        written += bytesWritten;
      }
      await this.tail.datasync();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const reason: SpoolDropReason = code === 'ENOSPC' || code === 'EDQUOT' ? 'disk_full' : 'spool_error';
      this.lastWriteFailure = reason;
      this.log.error({ err: (err as Error).message, code, dropped: batch.length }, 'kafka spool: write failed, newest Lines dropped');
      this.records -= batch.length;
      this.spilled -= batch.length;
      for (const m of meta) this.drop(reason, m.flavor, m.time);
      // Take back a partial write; if even that fails, start a new segment next time.
      try {
        if (this.tail !== null) await this.tail.truncate(before);
      } catch {
        await this.tail?.close().catch(() => {});
        this.tail = null;
      }
      if (seg !== undefined && seg.lastSeq < seg.firstSeq) {
        // The segment just created holds nothing: do not leave it behind.
        await this.tail?.close().catch(() => {});
        this.tail = null;
        this.segments.pop();
        await unlink(join(this.config.dir, seg.name)).catch(() => {});
      }
      return false;
    }
    seg.bytes += bytes;
    seg.lastSeq = readU64(batch[batch.length - 1]!, HEADER_BYTES);
    seg.unacked += batch.length;
    seg.oldest ??= meta[0]!.time;
    this.diskBytes += bytes;
    return true;
  }

  /** Segments wholly at or below the persisted watermark; the tail too once nothing waits. */
  private async unlinkDelivered(): Promise<void> {
    while (this.segments.length > 0) {
      const s = this.segments[0]!;
      const isTail = this.segments.length === 1;
      if (s.lastSeq > this.ledgerAcked) return;
      if (isTail) {
        if (this.pending.length > 0) return; // they go into this segment
        await this.tail?.close();
        this.tail = null;
      }
      if (this.reader?.name === s.name) {
        await this.reader.fh.close();
        this.reader = null;
      }
      if (this.chunk?.name === s.name) this.chunk = null;
      await unlink(join(this.config.dir, s.name));
      this.segments.shift();
      this.diskBytes -= s.bytes;
      if (this.readSeg === 0) this.readOffset = 0; // it was being read, and wholly: the next starts at 0
      else this.readSeg--;
    }
    await fsyncDirAsync(this.config.dir);
  }

  /**
   * Up to `max` records after the ones handed out, from written segments
   * (appends not yet flushed come after the next flush).
   */
  async read(max: number): Promise<SpoolRecord[]> {
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
        if (start > 0 || need > c.buf.length) {
          c = await this.load(seg, this.readOffset, Math.max(READ_CHUNK, need));
          d = decodeRecords(c.buf, 0, max - out.length);
        }
      }
      if (d.records.length === 0) {
        // Damaged after it was written (recovery checked it at start): give up on the rest of this segment.
        this.log.error({ segment: seg.name, offset: this.readOffset, problem: d.problem }, 'kafka spool: unreadable record, rest of segment skipped');
        this.quarantined++;
        this.readOffset = seg.bytes;
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
      await this.reader?.fh.close();
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
    if (this.flushing !== null || !this.ready) return false;
    const last = this.segments.length - 1;
    if (last < 0) return true;
    return this.readSeg === last && this.readOffset >= this.segments[last]!.bytes;
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
    this.outstanding = [];
    this.outHead = 0;
    this.outUnacked = 0;
    this.handedOut = this.acked;
    this.readSeg = 0;
    this.readOffset = 0;
  }

  /** Flush, persist the watermark, close files. Appends after this are dropped (spool_error). */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (!this.ready) return;
    await this.flushing;
    await this.flush();
    this.closed = true;
    await this.tail?.sync().catch(() => {});
    await this.tail?.close().catch(() => {});
    this.tail = null;
    await this.reader?.fh.close().catch(() => {});
    this.reader = null;
    this.chunk = null;
  }
}
