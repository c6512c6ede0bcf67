/**
 * The ledger: which records are delivered. Every record with a sequence at
 * or below the watermark (`acked`) has a delivery report from Kafka.
 *
 * In memory, the acknowledgement window: records handed out, in sequence
 * order, each waiting for its report; the watermark moves over the
 * contiguous acknowledged ones. It also counts what the spool holds.
 *
 * On disk, one small JSON file, `ledger.json`, replaced atomically (write a
 * temp file, fsync it, rename it over, fsync the directory) so a crash
 * leaves the old or the new one, never a torn one. It is written before any
 * fully acknowledged segment is unlinked, so a segment is never gone while
 * the ledger still points into it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AckWindow } from '../../ack-window.js';
import { writeFileAtomic } from '../../atomic-write.js';

export const LEDGER = 'ledger.json';

export interface Ledger {
  acked: number;
}

/** The ledger, or why it could not be used ('missing' / 'corrupt'). */
export function readLedger(dir: string): Ledger | 'missing' | 'corrupt' {
  let text: string;
  try {
    text = readFileSync(join(dir, LEDGER), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return 'corrupt';
  }
  try {
    const v = JSON.parse(text) as { acked?: unknown };
    if (typeof v.acked === 'number' && Number.isSafeInteger(v.acked) && v.acked >= 0) return { acked: v.acked };
  } catch { /* below */ }
  return 'corrupt';
}

/** Replace the ledger atomically and durably (atomic-write.ts), off the event loop. */
export async function writeLedgerAsync(dir: string, ledger: Ledger): Promise<void> {
  await writeFileAtomic(join(dir, LEDGER), `${JSON.stringify({ acked: ledger.acked })}\n`);
}

/** A record as a drop is reported: its flavor and arrival time. */
export interface Taken {
  flavor: string;
  time: number;
}

export class SpoolLedger {
  private watermark = 0;
  /** The watermark in ledger.json; -1 until written once by this run. */
  private persistedAt = -1;
  /** Highest sequence handed out (read from disk or handed over from RAM). */
  private handedOut = 0;
  /** Handed out, by sequence; the item is the arrival time. */
  private readonly window = new AckWindow<number>();
  /** Acknowledged, then a rewind put the read position before them: not handed out again. */
  private readonly skip = new Set<number>();
  /** Handed over from RAM, then their write failed: lost unless Kafka reports them delivered. */
  private readonly unwrittenOut = new Map<number, Taken>();
  private held = 0;
  private spilledCount = 0;
  private drainedCount = 0;

  constructor(private readonly dir: string) {}

  /** What a previous run left: its watermark, and how many records lie above it. */
  restore(acked: number, records: number): void {
    this.watermark = acked;
    this.handedOut = acked;
    this.held = records;
  }

  /** Every record at or below this is delivered. */
  get acked(): number {
    return this.watermark;
  }

  /** The watermark ledger.json holds: segments wholly at or below it may go. */
  get persisted(): number {
    return this.persistedAt;
  }

  /** Records not yet acknowledged, written or not. */
  get records(): number {
    return this.held;
  }

  /** Lines the spool took (less those it dropped after taking them). */
  get spilled(): number {
    return this.spilledCount;
  }

  /** Records Kafka acknowledged. */
  get drained(): number {
    return this.drainedCount;
  }

  /** Records handed out and not yet acknowledged. */
  get waiting(): number {
    return this.window.waiting;
  }

  /** A Line taken at the tail. */
  take(): void {
    this.held++;
    this.spilledCount++;
  }

  /** A record read from disk: true when it is to be handed out (not delivered, not out already). */
  fromDisk(seq: number, time: number): boolean {
    if (seq <= this.watermark) return false;
    return this.handOut(seq, time);
  }

  /** A record handed over from RAM before it is written: true when it is to be handed out. */
  fromRam(seq: number, time: number): boolean {
    return this.handOut(seq, time);
  }

  /**
   * Into the window, unless out already; one acknowledged before a rewind
   * (from disk or, still unwritten, from RAM) goes in settled, not out again.
   */
  private handOut(seq: number, time: number): boolean {
    if (seq <= this.handedOut) return false;
    this.handedOut = seq;
    if (this.skip.delete(seq)) {
      this.window.push(seq, time, true);
      this.advance();
      return false;
    }
    this.window.push(seq, time);
    return true;
  }

  /** Kafka has the record `seq`. */
  ack(seq: number): void {
    this.unwrittenOut.delete(seq);
    if (this.window.settle(seq) !== null) this.drainedCount++;
    this.advance();
  }

  private advance(): void {
    this.window.advance((_time, seq) => {
      this.watermark = seq;
      this.held--;
      return true;
    });
  }

  /** An unreadable record whose sequence survived: counted out unless delivered (or never given out). */
  damaged(seq: number, lastSeq: number): void {
    if (seq > this.watermark && seq <= lastSeq) {
      this.skip.delete(seq);
      this.held--;
    }
  }

  /**
   * A record whose write failed: true when it is lost now. Not those
   * delivered already, nor those handed over from RAM, which Kafka may
   * still deliver; they count as lost only if a rewind finds them gone.
   */
  writeFailed(seq: number, taken: Taken): boolean {
    if (seq <= this.watermark || this.window.isSettled(seq)) return false;
    if (this.skip.delete(seq)) {
      // Delivered before a rewind, and now never read again: counted out here.
      this.held--;
      return false;
    }
    if (seq <= this.handedOut) {
      this.unwrittenOut.set(seq, taken);
      return false;
    }
    this.held--;
    this.spilledCount--;
    return true;
  }

  /**
   * After a failed delivery: everything after the watermark not yet
   * acknowledged is handed out again. Returns the records handed over from
   * RAM, never written and not delivered: nothing can send them again.
   */
  rewind(): Taken[] {
    for (const seq of this.window.settledKeys()) this.skip.add(seq);
    const lost = [...this.unwrittenOut.values()];
    this.held -= lost.length;
    this.spilledCount -= lost.length;
    this.unwrittenOut.clear();
    this.window.clear();
    this.handedOut = this.watermark;
    return lost;
  }

  /** At the stop: the records handed over from RAM, never written, without a report. */
  takeUnwrittenOut(): Taken[] {
    const lost = [...this.unwrittenOut.values()];
    this.unwrittenOut.clear();
    return lost;
  }

  /** Sequences handed over from RAM whose write failed and that Kafka has not reported yet. */
  unwrittenHandedOver(): number[] {
    return [...this.unwrittenOut.keys()];
  }

  /** Arrival time of the oldest record handed out and not acknowledged, or null. */
  oldestOut(): number | null {
    return this.window.firstWaiting() ?? null;
  }

  /** Nothing is left to hand out or to wait for: what `records` still counts was skipped as damaged. */
  emptied(): void {
    this.held = 0;
  }

  /** Write the watermark to ledger.json when it moved. */
  async persist(): Promise<void> {
    if (this.watermark <= this.persistedAt) return;
    const acked = this.watermark;
    await writeLedgerAsync(this.dir, { acked });
    this.persistedAt = acked;
  }
}
