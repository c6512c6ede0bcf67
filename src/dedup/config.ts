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
 * One minute of one process's peak: BENCHMARKS.md's calibrated maximum,
 * 70,798 hits/s, times 60 s is 4.25 million; 2^22 is the power of two
 * nearest below (59 s at that rate). README: Duplicate hits gives its memory.
 */
export const DEFAULT_MAX_KEYS = 4_194_304;
export const DEFAULT_WINDOW_MS = 60_000;
