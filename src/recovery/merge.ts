/**
 * Several streams of messages (a partition's, or one instance's Lines of a
 * partition) as one day file's Lines: ordered by timestamp, each stream's
 * own order kept, and at equal timestamps the earlier stream first. A k-way
 * merge rather than a sort: a stream whose timestamps step back (a clock
 * step) keeps its order instead of being reshuffled. With one stream it is
 * that stream as it is.
 */
export interface Message {
  readonly timestamp: number;
  readonly value: Buffer;
}

export function mergeByTime(partitions: readonly (readonly Message[])[]): Message[] {
  if (partitions.length === 1) return [...partitions[0]!];
  const at = partitions.map(() => 0);
  const out: Message[] = [];
  for (;;) {
    let best = -1;
    for (let p = 0; p < partitions.length; p++) {
      const m = partitions[p]![at[p]!];
      if (m !== undefined && (best < 0 || m.timestamp < partitions[best]![at[best]!]!.timestamp)) best = p;
    }
    if (best < 0) return out;
    out.push(partitions[best]![at[best]!++]!);
  }
}
