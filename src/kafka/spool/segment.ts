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

/**
 * The segments on disk, oldest first, and their bytes. The writer adds at
 * the end and grows the last; the spool removes delivered ones from the
 * front; the reader walks them by index.
 */
export class Segments {
  private list: SegmentInfo[] = [];
  private total = 0;

  /** What recovery found. */
  load(segments: SegmentInfo[]): void {
    this.list = segments;
    this.total = segments.reduce((n, s) => n + s.bytes, 0);
  }

  get count(): number {
    return this.list.length;
  }

  /** Bytes of segment files on disk. */
  get bytes(): number {
    return this.total;
  }

  at(i: number): SegmentInfo | undefined {
    return this.list[i];
  }

  get first(): SegmentInfo | undefined {
    return this.list[0];
  }

  get last(): SegmentInfo | undefined {
    return this.list[this.list.length - 1];
  }

  /** A new tail, empty. */
  add(name: string, firstSeq: number): SegmentInfo {
    const seg = { name, firstSeq, lastSeq: firstSeq - 1, bytes: 0, unacked: 0, oldest: null };
    this.list.push(seg);
    return seg;
  }

  /** Whole records written to `seg`: `records` of them, the last with sequence `lastSeq`. */
  grew(seg: SegmentInfo, bytes: number, records: number, lastSeq: number): void {
    seg.bytes += bytes;
    seg.lastSeq = lastSeq;
    seg.unacked += records;
    this.total += bytes;
  }

  /** Take `seg` out (by identity: others may have been added meanwhile); the index it had, or -1. */
  remove(seg: SegmentInfo): number {
    const i = this.list.indexOf(seg);
    if (i < 0) return -1;
    this.list.splice(i, 1);
    this.total -= seg.bytes;
    return i;
  }

  /** Arrival time of the first record above `acked` in the first segment holding one, or null. */
  oldestAbove(acked: number): number | null {
    for (const s of this.list) if (s.lastSeq > acked && s.oldest !== null) return s.oldest;
    return null;
  }
}
