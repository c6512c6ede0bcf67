/**
 * The spool's reader: the records after the ones handed out, read from the
 * segments on disk in order, a chunk at a time. The ledger says which of
 * them go out (not delivered, not out already).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { SpoolLedger } from './ledger.js';
import { decodeRecords, HEADER_BYTES, readU64, type Decoded, type SpoolRecord } from './record.js';
import type { SegmentInfo, Segments } from './segment.js';

/** Read this much of a segment at a time. */
const READ_CHUNK = 1 << 20;

interface Chunk {
  name: string;
  from: number;
  buf: Buffer;
}

export class SpoolReader {
  /** The read position: a segment's index, and a byte offset in it. */
  private seg = 0;
  private offset = 0;
  private file: { name: string; fh: FileHandle } | null = null;
  /** The part of a segment read last (see load()). */
  private chunk: Chunk | null = null;
  /** Records found damaged while reading. */
  private damagedCount = 0;
  /** Reads and the removal of segments exclude each other: one moves the read position, the other the segments under it. */
  private lock: Promise<void> | null = null;

  constructor(
    private readonly dir: string,
    private readonly segments: Segments,
    private readonly ledger: SpoolLedger,
    private readonly log: Logger,
    /** Highest sequence ever given out. */
    private readonly lastSeq: () => number,
  ) {}

  get quarantined(): number {
    return this.damagedCount;
  }

  /** A read or a removal is under way. */
  get busy(): boolean {
    return this.lock !== null;
  }

  /** Every written record has been read. */
  atEnd(): boolean {
    const last = this.segments.count - 1;
    return last < 0 || (this.seg === last && this.offset >= this.segments.at(last)!.bytes);
  }

  /** Run fn while neither a read nor a removal of segments is under way. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.lock !== null) await this.lock;
    let release!: () => void;
    this.lock = new Promise((r) => { release = r; });
    try {
      return await fn();
    } finally {
      this.lock = null;
      release();
    }
  }

  /** Up to `max` records after the ones handed out. */
  read(max: number): Promise<SpoolRecord[]> {
    return this.exclusive(() => this.readLocked(max));
  }

  private async readLocked(max: number): Promise<SpoolRecord[]> {
    const out: SpoolRecord[] = [];
    while (out.length < max) {
      const seg = this.segments.at(this.seg);
      if (seg === undefined) return out;
      if (this.offset >= seg.bytes) {
        if (this.seg < this.segments.count - 1) {
          this.seg++;
          this.offset = 0;
          continue;
        }
        return out;
      }
      const { c, d } = await this.decodeAt(seg, max - out.length);
      if (d.records.length === 0) {
        this.skipDamaged(seg, c, d.problem);
        continue;
      }
      this.offset = c.from + d.end;
      for (const r of d.records) if (this.ledger.fromDisk(r.seq, r.time)) out.push(r);
    }
    return out;
  }

  /** Up to `max` records at the read position (none when the one there is damaged). */
  private async decodeAt(seg: SegmentInfo, max: number): Promise<{ c: Chunk; d: Decoded }> {
    let c = this.chunk;
    if (c === null || c.name !== seg.name || this.offset < c.from || this.offset >= c.from + c.buf.length) {
      c = await this.load(seg, this.offset, READ_CHUNK);
    }
    let d = decodeRecords(c.buf, this.offset - c.from, max);
    if (d.records.length === 0 && d.problem === 'truncated') {
      // The next record runs past the chunk (or is larger than one): read
      // again from its start, at least the whole record.
      const start = this.offset - c.from;
      const need = c.buf.length - start >= HEADER_BYTES ? HEADER_BYTES + c.buf.readUInt32LE(start) : READ_CHUNK;
      if ((start > 0 || need > c.buf.length) && this.offset + need <= seg.bytes) {
        c = await this.load(seg, this.offset, Math.max(READ_CHUNK, need));
        d = decodeRecords(c.buf, 0, max);
      }
    }
    return { c, d };
  }

  /**
   * Damaged after it was written (recovery checked it at start). With its
   * length intact (a bad checksum), only this record is skipped; a bad
   * length leaves no way to the next: the rest of the segment.
   */
  private skipDamaged(seg: SegmentInfo, c: Chunk, problem: Decoded['problem']): void {
    const start = this.offset - c.from;
    const len = c.buf.length - start >= HEADER_BYTES ? c.buf.readUInt32LE(start) : 0;
    const one = problem === 'checksum' && this.offset + HEADER_BYTES + len <= seg.bytes;
    this.log.error({ segment: seg.name, offset: this.offset, problem },
      one ? 'kafka spool: unreadable record skipped' : 'kafka spool: unreadable record, rest of segment skipped');
    this.damagedCount++;
    // Its sequence, if the flip spared it: counted out unless already delivered.
    if (one && len >= 8) this.ledger.damaged(readU64(c.buf, start + HEADER_BYTES), this.lastSeq());
    this.offset = one ? this.offset + HEADER_BYTES + len : seg.bytes;
  }

  /**
   * `want` bytes of a segment from `from` (no further than its whole
   * records), kept as the chunk the next reads decode from: each read takes
   * a slice of records, so one chunk serves several.
   */
  private async load(seg: SegmentInfo, from: number, want: number): Promise<Chunk> {
    if (this.file?.name !== seg.name) {
      const old = this.file;
      this.file = null;
      await old?.fh.close();
      this.file = { name: seg.name, fh: await open(join(this.dir, seg.name), 'r') };
    }
    const buf = Buffer.allocUnsafe(Math.min(want, seg.bytes - from));
    const { bytesRead } = await this.file.fh.read(buf, 0, buf.length, from);
    this.chunk = { name: seg.name, from, buf: buf.subarray(0, bytesRead) };
    return this.chunk;
  }

  /** After a failed delivery: read again from the first segment. */
  rewind(): void {
    this.seg = 0;
    this.offset = 0;
  }

  /** Segment `name` is about to go: let go of it. */
  async release(name: string): Promise<void> {
    if (this.file?.name === name) {
      const fh = this.file.fh;
      this.file = null;
      await fh.close().catch(() => {});
    }
    if (this.chunk?.name === name) this.chunk = null;
  }

  /** The segment at index `i` was removed: keep the position on the same bytes. */
  removed(i: number): void {
    if (i < 0) return;
    if (this.seg > i) this.seg--;
    else if (this.seg === i) {
      if (i > 0) {
        // It was read to its (empty) end: the end of the one before.
        this.seg = i - 1;
        this.offset = this.segments.at(i - 1)!.bytes;
      } else {
        this.offset = 0; // it was being read: the next starts at 0
      }
    }
  }

  async close(): Promise<void> {
    const file = this.file;
    this.file = null;
    await file?.fh.close().catch(() => {});
    this.chunk = null;
  }
}
