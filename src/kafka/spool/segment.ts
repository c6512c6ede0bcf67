/**
 * Segment files: `<first sequence, 20 digits>.seg`, so names sort in
 * sequence order. Records are appended to the newest (the tail) until it
 * reaches `segmentBytes`, then a new one starts.
 */
export const SEGMENT_SUFFIX = '.seg';
export const QUARANTINE = 'quarantine';

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** A segment file's first sequence, or null for any other name. */
export function segmentSeq(name: string): number | null {
  const m = /^(\d{20})\.seg$/.exec(name);
  return m === null ? null : Number(m[1]);
}

/** What is known of one segment on disk. */
export interface SegmentInfo {
  name: string;
  /** The sequence its name promises for its first record. */
  firstSeq: number;
  /** Sequence of its last record (firstSeq - 1 when it has none). */
  lastSeq: number;
  /** Bytes of whole records in it. */
  bytes: number;
  /** Records in it with a sequence above the ledger's watermark. */
  unacked: number;
  /** Arrival time of its first unacknowledged record, if any. */
  oldest: number | null;
}
