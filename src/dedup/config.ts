/**
 * `flavors[].dedup` as config.schema.json describes it, defaults applied.
 * Types and defaults only, so flavor.ts can hold them.
 */
export interface DedupConfig {
  /** Parts of a hit's key: ip, userAgent, body, query (raw), or top-level Values field names. */
  readonly key: readonly string[];
  readonly windowMs: number;
  readonly maxKeys: number;
}

/** The parts read from the request rather than from the Line. */
export const REQUEST_PARTS: ReadonlySet<string> = new Set(['ip', 'userAgent', 'body', 'query']);

/**
 * One minute of one process's peak: BENCHMARKS.md's half load, 35,400
 * hits/s (the load its latency figures are given at: a process run nearer
 * its maximum has no headroom), times 60 s is 2.12 million; 2^21 is the
 * power of two nearest below. docs/http.md (Duplicate hits) gives its memory.
 */
export const DEFAULT_MAX_KEYS = 2_097_152;
export const DEFAULT_WINDOW_MS = 60_000;
