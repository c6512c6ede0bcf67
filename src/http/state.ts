/**
 * What every route of the public listener shares: the settings in force, the
 * drain flag, and where a hit's counts and Lines go. One object per app,
 * made once by makeHttp. Routes read `settings` and `draining` at the moment
 * they use them, so a reload or a drain applies from the next read on, as
 * the closure variables they replace did.
 */
import type { DedupState } from '../dedup/state.js';
import type { PrivacyState } from '../privacy/policy.js';
import type { DedupKey } from '../dedup/key.js';
import type { BodyBudget } from './body.js';
import type { RequestCounters } from './counters.js';
import { internalFailure } from './internal.js';
import type { HttpSettings } from './settings.js';

/**
 * Where a hit's accepted Lines go: the relay to the backends on the main
 * thread (threads/relay.ts). Bounded: `fits` is asked before answering.
 */
export interface Sink {
  size(flavor: string, json: Buffer, key: boolean): number;
  fits(bytes: number): boolean;
  add(flavor: string, time: number, json: Buffer, key: DedupKey | null): void;
  /** A Line refused for a full relay (counted and told to the loss tracker on the main thread). */
  refuse(flavor: string, time: number): void;
}

export interface HttpState {
  /** Swapped whole on a config reload (settings.ts). */
  settings: HttpSettings;
  /** /health answers 503 and every answer closes its connection. */
  draining: boolean;
  readonly counters: RequestCounters;
  readonly sink: Sink;
  readonly privacy: PrivacyState;
  /** Keys only: the main thread's stores judge them. */
  readonly dedup: DedupState;
  readonly budget: BodyBudget;
  /** Rate-limited error lines (log.ts), or none when makeHttp got no logger. */
  readonly logError: ((kind: string, fields: object, msg: string) => void) | null;
}

/** The converter threw (answered 500 `internal`, counted by reject()): log it without the input. */
export function converterFailed(s: HttpState, input: string | Uint8Array, error: unknown): void {
  s.logError?.('internal', internalFailure(input, error), 'converter failed: a bug in scratchd');
}
