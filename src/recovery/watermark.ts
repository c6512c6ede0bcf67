/**
 * How far a replay is safely done. Lines are produced in file order, but
 * their delivery reports may come back in another order (several
 * partitions). The watermark is the position after the last Line of the
 * longest delivered prefix: resuming from it re-produces nothing delivered
 * before it. A failed Line stops it for good (it must be produced again).
 */
export interface Position {
  /** The day file (its day, YYYY-MM-DD). */
  day: string;
  /** Byte offset right after the Line (its newline included). */
  offset: number;
}

export class Watermark {
  private readonly pending: (Position & { state: 'wait' | 'ok' | 'failed' })[] = [];
  private head = 0;
  /** Sequence number of pending[head]. */
  private base = 0;
  private failed = false;

  constructor(public position: Position | null = null) {}

  /** A Line produced; its sequence number for the delivery report. */
  push(at: Position): number {
    this.pending.push({ ...at, state: 'wait' });
    return this.base + this.pending.length - this.head - 1;
  }

  /** A delivery report; true when the position moved. */
  settle(seq: number, ok: boolean): boolean {
    const p = this.pending[this.head + seq - this.base];
    if (p === undefined || p.state !== 'wait') return false;
    p.state = ok ? 'ok' : 'failed';
    let moved = false;
    while (!this.failed && this.head < this.pending.length && this.pending[this.head]!.state !== 'wait') {
      const done = this.pending[this.head]!;
      if (done.state === 'failed') {
        this.failed = true;
        break;
      }
      this.position = { day: done.day, offset: done.offset };
      this.head++;
      this.base++;
      moved = true;
    }
    // Drop what is behind the head now and then, not on every report.
    if (this.head > 4096 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
    return moved;
  }
}
