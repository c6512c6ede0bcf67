import type { Flavor } from '../flavor.js';

/**
 * What one flavor's writers share: its part of the backend's queue and its
 * counts. One per flavor name for the life of the backend: a reload that
 * changes the flavor hands in a new Flavor object, which replaces `flavor`
 * here (its time zone applies from then on) and keeps the state.
 */
export class FlavorState {
  /** Lines routed to this flavor's writers and not yet written or dropped, and their bytes (newlines included). */
  held = 0;
  heldBytes = 0;
  /** Writers of this flavor whose last write failed. */
  failingWriters = 0;
  dropped = 0;
  late = 0;
  constructor(public flavor: Flavor) {}
}
