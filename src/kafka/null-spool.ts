/**
 * The spool's small interface as the Kafka backend uses it, and the spool
 * that stands in when there is no disk (none configured, or it could not be
 * opened): always ready and empty, so the backend makes the same calls
 * either way. The spill decision never spills into it (spill.ts).
 * Without a spool, the normal path's Lines are not tracked either: they are
 * tracked only to be re-spooled (UNTRACKED).
 */
import type { InFlight } from './inflight.js';
import { noDrops } from './spool/drop-reasons.js';
import type { Spool } from './spool/spool.js';

export type SpoolPort = Pick<Spool,
  | 'ready' | 'records' | 'drained' | 'acked' | 'open' | 'close' | 'append' | 'read' | 'ack' | 'rewind'
  | 'isEmpty' | 'canHandOver' | 'handOver'
  | 'oldest' | 'diskBytes' | 'segmentCount' | 'spilled' | 'drops' | 'quarantined'>;

class NullSpool implements SpoolPort {
  readonly ready = true;
  readonly records = 0;
  readonly drained = 0;
  readonly acked = 0;
  readonly diskBytes = 0;
  readonly segmentCount = 0;
  readonly spilled = 0;
  readonly drops = noDrops();
  readonly quarantined = 0;
  open(): Promise<void> { return Promise.resolve(); }
  close(): Promise<void> { return Promise.resolve(); }
  /** Never called: nothing spills without a disk. */
  append(): boolean { return false; }
  read(): ReturnType<Spool['read']> { return Promise.resolve([]); }
  ack(): void {}
  rewind(): void {}
  isEmpty(): boolean { return true; }
  canHandOver(): boolean { return false; }
  handOver(): ReturnType<Spool['handOver']> { return []; }
  oldest(): number | null { return null; }
}

export const NULL_SPOOL: SpoolPort = new NullSpool();

/** The normal path's tracking without a spool: nothing to re-spool, so every report finds its Line waiting. */
export const UNTRACKED: Pick<InFlight, 'add' | 'delete' | 'takeAll'> = {
  add(): void {},
  delete(): boolean { return true; },
  takeAll() { return []; },
};
