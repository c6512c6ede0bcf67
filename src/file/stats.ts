/** What the file backend reports beyond every backend's counters (`/stats` `file`, and /metrics). */
export interface FileStats {
  /** Days sealed (manifest written) by this process. */
  sealed_days: number;
  /** Sealed days compressed to `.log.gz`. */
  compressed_days: number;
  /** Sealed days removed by `retainDays`. */
  pruned_days: number;
  /** Lines whose day was already sealed, written to a later day's file. */
  late_lines: number;
  /** Torn last Lines cut off to `.torn` (a crash mid-write in an earlier run). */
  torn_lines: number;
  /** Per flavor: Lines held for its writers, dropped (its share full, or the queue full), late, and 1 while a write of it fails. */
  flavors: Record<string, { queued: number; dropped: number; late: number; failing: number }>;
  /** Per flavor: past days with a file and no manifest yet, as of the last pass. */
  unsealed_past_days: Record<string, string[]>;
}

export interface FileStatsSource {
  fileStats(): FileStats;
}
