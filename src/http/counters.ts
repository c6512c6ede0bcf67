/**
 * The request path's counters: plain numbers bumped in place, read by the
 * stats listener when it is asked. (prom-client's labelled counters cost a
 * label lookup per increment; these cost an add.) They live with the code
 * that bumps them; stats/ reads them, never the other way round.
 */
import { rejectReasons, type RejectReason } from './reject.js';
import type { CorsCounters } from './cors.js';
import type { DedupCounters } from '../dedup/key.js';

/** Methods are counted by these names; any other method counts as OTHER. */
export type CountedMethod = 'GET' | 'HEAD' | 'POST' | 'OTHER';

export interface RequestCounters {
  /** Answered requests: responses[method].get(status). */
  readonly responses: Record<CountedMethod, Map<number, number>>;
  readonly rejected: Record<RejectReason, number>;
  readonly cors: CorsCounters;
  /** Duplicate hits and dedup evictions, by flavor (flavors with dedup on). */
  readonly dedup: Map<string, DedupCounters>;
}

export function newRequestCounters(): RequestCounters {
  const rejected = {} as Record<RejectReason, number>;
  for (const r of rejectReasons) rejected[r] = 0;
  return { responses: { GET: new Map(), HEAD: new Map(), POST: new Map(), OTHER: new Map() }, rejected, cors: { preflight: 0, denied: 0 }, dedup: new Map() };
}

export function countResponse(c: RequestCounters, method: CountedMethod, status: number): void {
  const m = c.responses[method];
  m.set(status, (m.get(status) ?? 0) + 1);
}
