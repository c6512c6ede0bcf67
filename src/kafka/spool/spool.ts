/**
 * The Kafka backend's disk spool: an append-only log of Lines in segment
 * files, read from the head by the drainer, trimmed as Kafka acknowledges.
 * A facade over three parts, each with one job:
 *
 *   writer.ts  append() at the tail, written once per event-loop turn,
 *              fsynced every `fsyncMs`; the bounds that drop the newest.
 *   reader.ts  read(): the next records after what was handed out.
 *   ledger.ts  ack(seq): the watermark (every record at or below it
 *              delivered) advances over contiguous acknowledged records and
 *              is persisted in ledger.json at the next sync; segments wholly
 *              below the persisted watermark are then unlinked (here).
 *
 *   rewind()   after a failed delivery: read again from the watermark.
 *
 * Two lanes of file I/O, each one call after another: writes (and rolls to
 * a new segment) in one, fsync, the ledger and unlinking in the other, so a
 * slow or hung fsync never holds back the writes that keep RAM small.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { syncDir } from '../../atomic-write.js';
import type { KafkaSpoolConfig } from '../../config.js';
import { noDrops, type SpoolDropReason, type SpoolDrops } from './drop-reasons.js';
import { SpoolLedger } from './ledger.js';
import { SpoolReader } from './reader.js';
import { decodeRecords, type SpoolRecord } from './record.js';
import { recoverSpool } from './open-scan.js';
import { Segments } from './segment.js';
import { SpoolWriter, UNWRITTEN_MAX_BYTES } from './writer.js';

export type { SpoolDropReason } from './drop-reasons.js';

export type SpoolConfig = KafkaSpoolConfig;

export type DropListener = (reason: SpoolDropReason, flavor: string, time: number) => void;

export class Spool {
  private readonly segments = new Segments();
  private readonly ledger: SpoolLedger;
  private readonly writer: SpoolWriter;
  private readonly reader: SpoolReader;
  private readonly dropCounts = noDrops();
  /** Found damaged by recovery at open (the reader counts what it finds after). */
  private recoveredDamaged = 0;
  private opened = false;
  private closed = false;
  private syncing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly config: SpoolConfig, private readonly log: Logger, private readonly onDrop: DropListener,
    /** New Lines the disk may owe before the newest are refused (SpoolWriter). */
    unwrittenMax = UNWRITTEN_MAX_BYTES,
  ) {
    this.ledger = new SpoolLedger(config.dir);
    this.reader = new SpoolReader(config.dir, this.segments, this.ledger, log, () => this.writer.lastSeq);
    this.writer = new SpoolWriter(config, log, this.segments, this.ledger, this.drop, (i) => this.reader.removed(i), unwrittenMax);
  }

  /** Recover what a previous run left; then appends are fsynced every fsyncMs. */
  async open(): Promise<void> {
    const r = await recoverSpool(this.config.dir);
    this.segments.load(r.segments);
    this.ledger.restore(r.acked, r.segments.reduce((n, s) => n + s.unacked, 0));
    this.writer.restore(r.lastSeq);
    this.recoveredDamaged = r.quarantined;
    for (const p of r.problems) this.log.error({ dir: this.config.dir }, `kafka spool: ${p}`);
    this.log.info({ dir: this.config.dir, records: this.records, bytes: this.diskBytes, segments: this.segmentCount,
      ledger: r.ledger, quarantined: r.quarantined }, 'kafka spool opened');
    await this.writer.refreshFree();
    this.opened = true;
    this.timer = setInterval(() => { if (this.syncing === null) void this.sync(); }, this.config.fsyncMs);
    this.timer.unref(); // the server keeps the process alive, not the spool
  }

  /** Recovery done: append/read may be used. */
  get ready(): boolean {
    return this.opened;
  }

  /** Unacknowledged records, written or not. */
  get records(): number {
    return this.ledger.records;
  }

  /** Bytes of segment files on disk. */
  get diskBytes(): number {
    return this.segments.bytes;
  }

  get segmentCount(): number {
    return this.segments.count;
  }

  /** Appends not yet written to a segment, in bytes. */
  get unwrittenBytes(): number {
    return this.writer.unwrittenBytes;
  }

  get spilled(): number {
    return this.ledger.spilled;
  }

  get drained(): number {
    return this.ledger.drained;
  }

  /** The watermark: every record at or below this sequence is delivered. */
  get acked(): number {
    return this.ledger.acked;
  }

  get drops(): Readonly<SpoolDrops> {
    return { ...this.dropCounts };
  }

  get quarantined(): number {
    return this.recoveredDamaged + this.reader.quarantined;
  }

  /** Nothing in the spool: every record appended has been acknowledged (or dropped). */
  isEmpty(): boolean {
    if (this.ledger.records <= 0) return true;
    // A record skipped as damaged while reading is not counted out of
    // `records` (how many a damaged run held is unknown): everything read,
    // reported and written is empty too.
    if (this.ledger.waiting === 0 && !this.writer.holdsUnwritten() && this.reader.atEnd()) {
      this.ledger.emptied();
      return true;
    }
    return false;
  }

  /** Arrival time of the oldest unacknowledged record (of its segment's first, when not yet read), or null. */
  oldest(): number | null {
    if (this.ledger.records === 0) return null;
    return this.ledger.oldestOut() ?? this.segments.oldestAbove(this.ledger.acked) ?? this.writer.oldestUnwritten();
  }

  /** Take a Line at the tail; false (and onDrop) when a bound says no. `held`: see SpoolWriter.append. */
  append(flavor: string, time: number, payload: Buffer, held = false): boolean {
    if (this.closed) return this.drop('spool_error', flavor, time);
    return this.writer.append(flavor, time, payload, held);
  }

  private readonly drop = (reason: SpoolDropReason, flavor: string, time: number): false => {
    this.dropCounts[reason]++;
    this.onDrop(reason, flavor, time);
    return false;
  };

  /** Write what was appended, fsync it, persist the watermark, unlink what is delivered. */
  async flush(): Promise<void> {
    await this.writer.flush();
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
    await this.writer.sync();
    // Before any segment goes: a crash between the two leaves segments the
    // ledger says are delivered (deleted at the next start), never a
    // ledger behind files already gone.
    await this.ledger.persist();
    await this.unlinkDelivered();
  }

  /** Segments wholly at or below the persisted watermark; the tail too once nothing waits to be written to it. */
  private async unlinkDelivered(): Promise<void> {
    if (this.segments.first === undefined || this.segments.first.lastSeq > this.ledger.persisted) return;
    await this.reader.exclusive(async () => {
      let removed = false;
      for (let s = this.segments.first; s !== undefined && s.lastSeq <= this.ledger.persisted; s = this.segments.first) {
        if (this.segments.count === 1 && !(await this.writer.releaseTail())) break; // appends go into this segment
        await this.reader.release(s.name);
        await unlink(join(this.config.dir, s.name)).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        });
        removed = true;
        this.reader.removed(this.segments.remove(s));
      }
      if (removed) await syncDir(this.config.dir);
    });
  }

  /**
   * Up to `max` records after the ones handed out, from written segments
   * (appends not yet written come after the write at the end of this turn).
   */
  read(max: number): Promise<SpoolRecord[]> {
    return this.reader.read(max);
  }

  /**
   * Whether handOver() may be used now: every written record has been read
   * and no write is under way, so the unwritten appends are exactly the
   * records not yet handed out.
   */
  canHandOver(): boolean {
    if (this.writer.busy || !this.opened || this.reader.busy) return false;
    return this.reader.atEnd();
  }

  /**
   * The appends not yet written, handed out from RAM (they are still written
   * and acknowledged like any record), so the drainer can catch up with a
   * tail that keeps growing and hand the stream back to the normal path in
   * one step, in order.
   */
  handOver(): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    for (const frame of this.writer.unwritten()) {
      const r = decodeRecords(frame).records[0]!;
      if (this.ledger.fromRam(r.seq, r.time)) out.push(r);
    }
    return out;
  }

  /** Kafka has the record `seq`. */
  ack(seq: number): void {
    this.ledger.ack(seq);
  }

  /** Records handed out and not yet acknowledged. */
  unackedOut(): number {
    return this.ledger.waiting;
  }

  /** After a failed delivery: hand out again everything after the watermark not yet acknowledged. */
  rewind(): void {
    // Handed over from RAM, not written, not delivered: nothing can send them again.
    for (const m of this.ledger.rewind()) this.drop('spool_error', m.flavor, m.time);
    this.reader.rewind();
  }

  /** Sequences handed over from RAM whose write failed and that Kafka has not reported yet. */
  unwrittenHandedOver(): number[] {
    return this.ledger.unwrittenHandedOver();
  }

  /** Write and fsync, persist the watermark, close files. Appends after this are dropped (spool_error). */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (!this.opened) return;
    await this.flush();
    this.closed = true;
    // Handed over, not written, no report before the stop: nothing sends them again.
    for (const m of this.ledger.takeUnwrittenOut()) this.drop('spool_error', m.flavor, m.time);
    await this.writer.close();
    await this.reader.close();
  }
}
