import type { Flavor } from './flavor.js';

/**
 * One accepted beacon. `json` is the Values object serialized once on the
 * request path, as UTF-8; every backend writes these exact bytes (the file
 * backend adds the newline) and none may change them: they share memory with
 * other Lines.
 */
export interface Line {
  readonly flavor: Flavor;
  readonly json: Buffer;
  /** Arrival time, ms since the epoch. */
  readonly time: number;
}
