import type { Flavor } from './flavor.js';

/**
 * One accepted beacon. `json` is the Values object serialized once on the
 * request path; every backend writes these exact bytes (the file backend adds
 * the newline).
 */
export interface Line {
  readonly flavor: Flavor;
  readonly json: string;
  /** Arrival time, ms since the epoch. */
  readonly time: number;
}
