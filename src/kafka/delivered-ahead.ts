/**
 * Spooled records Kafka acknowledged above the spool's watermark: a record
 * before them still waits for its report (a missing topic's Lines, retried
 * for a while, unknown-topics.ts), and ledger.json keeps only the
 * contiguous watermark, so the next start reads these again. At a clean
 * stop their fingerprints go into the doubt file as `delivered` (doubt.ts):
 * the next start skips them, neither sent nor counted `persisted` again.
 *
 * Only a record acknowledged while the watermark is held below it is
 * noted (one fingerprint each); with the watermark at it, the common case,
 * nothing is kept.
 */
export class DeliveredAhead {
  /** Sequence → fingerprint, about in acknowledgement order. */
  private readonly prints = new Map<number, string>();

  get size(): number {
    return this.prints.size;
  }

  note(seq: number, print: string): void {
    this.prints.set(seq, print);
  }

  /**
   * The watermark moved to `watermark`: forget what it passed. Stops at the
   * first one above it, so each call costs what it forgets; one passed but
   * behind that goes at a later call, and above() never returns it.
   */
  passed(watermark: number): void {
    for (const seq of this.prints.keys()) {
      if (seq > watermark) return;
      this.prints.delete(seq);
    }
  }

  /** The fingerprints of those above `watermark`. */
  above(watermark: number): string[] {
    const out: string[] = [];
    for (const [seq, print] of this.prints) if (seq > watermark) out.push(print);
    return out;
  }
}
