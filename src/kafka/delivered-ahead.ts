/**
 * Spooled records Kafka acknowledged above the spool's watermark: a record
 * before them still waits for its report (a missing topic's Lines, retried
 * for a while, unknown-topics.ts), and ledger.json keeps only the
 * contiguous watermark, so the next start reads these again. At a clean
 * stop their fingerprints go into the doubt file as `delivered` (doubt.ts):
 * the next start skips them, neither sent nor counted `persisted` again.
 *
 * A note keeps the record's own report object (no copy, no hash): reports
 * come back out of order across partitions all the time, and the watermark
 * passes most notes within moments. Fingerprints are made at the stop, for
 * what is still above the watermark. At most MAX_NOTES are kept (their
 * payloads are held in memory); a record acknowledged beyond that is not
 * noted, and is sent again at the next start (at least once).
 */
export const MAX_NOTES = 50_000;

export class DeliveredAhead<T> {
  /** Sequence → record, about in acknowledgement order. */
  private readonly notes = new Map<number, T>();
  /** Records not noted because MAX_NOTES were held. */
  unnoted = 0;

  constructor(private readonly max = MAX_NOTES) {}

  get size(): number {
    return this.notes.size;
  }

  note(seq: number, record: T): void {
    if (this.notes.size >= this.max) this.unnoted++;
    else this.notes.set(seq, record);
  }

  /**
   * The watermark moved to `watermark`: forget what it passed. Stops at the
   * first one above it, so each call costs what it forgets; one passed but
   * behind that goes at a later call, and above() never returns it.
   */
  passed(watermark: number): void {
    for (const seq of this.notes.keys()) {
      if (seq > watermark) return;
      this.notes.delete(seq);
    }
  }

  /** The records above `watermark`. */
  above(watermark: number): T[] {
    const out: T[] = [];
    for (const [seq, record] of this.notes) if (seq > watermark) out.push(record);
    return out;
  }
}
