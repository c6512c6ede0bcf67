/**
 * What each message handed to librdkafka is, carried through librdkafka as
 * its opaque and given back in its delivery report, so every report is
 * matched to its own Line exactly (whatever the partition, timestamp or
 * size), and a failure is reported with the Line's own flavor and arrival
 * time.
 *
 *   - a Line of the normal path is its own opaque;
 *   - a record of the spool is a SpooledRef (its sequence in the spool).
 */
import type { Line } from '../line.js';

export interface SpooledRef {
  readonly seq: number;
  readonly flavor: string;
  readonly time: number;
  /** Where it went, and what: a record without a report at shutdown is in doubt (in-doubt.ts). */
  readonly topic: string;
  readonly payload: Buffer;
}

export type Sent = Line | SpooledRef;

export function isSpooled(s: Sent): s is SpooledRef {
  return typeof (s as { seq?: unknown }).seq === 'number';
}

/**
 * Lines of the normal path librdkafka holds (no report yet), in produce
 * order: the ones written to the spool if they are still there at shutdown.
 */
export class InFlight {
  private readonly lines = new Set<Line>();

  get size(): number {
    return this.lines.size;
  }

  add(line: Line): void {
    this.lines.add(line);
  }

  /** Its report came: false when it was not waiting (taken by takeAll). */
  delete(line: Line): boolean {
    return this.lines.delete(line);
  }

  /** Every Line still waiting, in produce order; forgets them. */
  takeAll(): Line[] {
    const out = [...this.lines];
    this.lines.clear();
    return out;
  }
}
