/**
 * Why the spool could not take a Line: the one table the type, the spool's
 * counters, `/stats` (dropped_total) and `/metrics` (the `reason` label) are
 * all read from, in this order.
 */
export const SPOOL_DROP_REASONS = {
  spool_full: 'the spool holds maxBytes, or the Line is larger than a record may be',
  disk_full: 'the filesystem has less than minFreeBytes free, or a write found it full',
  spool_error: 'a write failed, the disk does not take writes, or the spool is closed',
} as const;

export type SpoolDropReason = keyof typeof SPOOL_DROP_REASONS;

export const spoolDropReasons = Object.keys(SPOOL_DROP_REASONS) as SpoolDropReason[];

/** Lines dropped so far, by reason. */
export type SpoolDrops = Record<SpoolDropReason, number>;

export function noDrops(): SpoolDrops {
  return Object.fromEntries(spoolDropReasons.map((r) => [r, 0])) as SpoolDrops;
}
