/**
 * How far a replay is safely done. Lines are produced in file order, but
 * their delivery reports may come back in another order (several
 * partitions). The watermark is the position after the last Line of the
 * longest delivered prefix: resuming from it re-produces nothing delivered
 * before it. A failed Line stops it for good (it must be produced again).
 */
import { AckWindow } from '../ack-window.js';

export interface Position {
  /** The day file (its day, YYYY-MM-DD). */
  day: string;
  /** Byte offset right after the Line (its newline included). */
  offset: number;
}

export class Watermark {
  private readonly window = new AckWindow<Position & { failed: boolean }>();
  private next = 0;
  private failed = false;

  constructor(private at: Position | null = null) {}

  /** The position to resume from, null before the first delivered Line. */
  get position(): Position | null {
    return this.at;
  }

  /** A Line produced; its sequence number for the delivery report. */
  push(at: Position): number {
    const seq = this.next++;
    this.window.push(seq, { day: at.day, offset: at.offset, failed: false });
    return seq;
  }

  /** A delivery report; true when the position moved. */
  settle(seq: number, ok: boolean): boolean {
    const p = this.window.settle(seq);
    if (p === null) return false;
    p.failed = !ok;
    let moved = false;
    if (this.failed) return false;
    this.window.advance((done) => {
      if (done.failed) {
        this.failed = true;
        return false;
      }
      this.at = { day: done.day, offset: done.offset };
      moved = true;
      return true;
    });
    return moved;
  }
}
