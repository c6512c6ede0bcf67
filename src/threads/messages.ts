/**
 * What the main thread and a serving thread say to each other. The Lines
 * go in RelayBatch (relay.ts); everything else is rare: start, reload,
 * counters when /stats or /metrics is read, drain and close.
 */
import type { RequestCounters } from '../http/counters.js';
import type { PrivacyCounters } from '../privacy/policy.js';
import type { RelayBatch } from './relay.js';

/** What a serving thread starts with (workerData). */
export interface ThreadStart {
  index: number;
  configFile: string;
  /** The config text the main thread checked; the thread compiles it itself (Flavors hold functions). */
  configText: string;
  /** Listening sockets to accept on (systemd's or the main thread's own). */
  fds: readonly number[];
  /** Connections accepted per wake-up (activation.ts). */
  acceptBatch: number;
  /** relay.ts: bytes relayed and not yet unpacked, shared with the main thread. */
  inFlight: SharedArrayBuffer;
  /** relay.ts: the batches' sequence counter, one for all threads. */
  order: SharedArrayBuffer;
  /** limits.maxBodyBytesInFlight's counter, one for all threads (http/body.ts). */
  bodyMemory: SharedArrayBuffer;
  /** dedup/hash.ts's seed: one per process, so every thread's keys match. */
  hashSeed: Uint8Array;
  /** Every privacy salt the main thread holds (privacy/salts.ts): one per flavor and day for the process. */
  salts: [flavor: string, day: string, salt: Uint8Array][];
  /** Only under test/helpers/clock.mjs: the shared offset of the tests' clock. */
  testClock?: SharedArrayBuffer;
}

export type ToThread =
  /** Start accepting on the public sockets (after the main thread logged `serving`). */
  | { type: 'accept' }
  | { type: 'configure'; text: string }
  | { type: 'counters'; id: number }
  /** After each pass of the main thread's salt keeper: every salt. */
  | { type: 'salts'; all: [string, string, Uint8Array][] }
  /** Stop accepting; /health answers 503 and every answer closes its connection. */
  | { type: 'drain' }
  /** Close every connection, post what is still packed, and end. */
  | { type: 'close' };

/** A serving thread's counters, summed by the main thread. */
export interface ThreadCounters {
  requests: RequestCounters;
  privacy: Map<string, PrivacyCounters>;
}

export type FromThread =
  | RelayBatch
  | { type: 'ready' }
  | { type: 'accepting' }
  | { type: 'failed'; message: string }
  | { type: 'configured'; error: string | null }
  | { type: 'drained' }
  /** A hit found no salt for its day: the main thread's keeper runs a pass now. */
  | { type: 'saltMiss' }
  | { type: 'counters'; id: number; counters: ThreadCounters }
  | { type: 'closed'; counters: ThreadCounters };
