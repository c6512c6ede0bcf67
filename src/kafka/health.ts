/**
 * The Kafka backend's /health state, from what is known of the producer,
 * the spool and the queue. With a spool, what it holds decides, not the
 * last event: Lines in it (from an outage, a hand-over, a previous run) are
 * safe, but not delivered.
 */
import type { BackendHealth } from '../backend.js';
import type { SpoolDropReason } from './spool/drop-reasons.js';
import type { SpoolPort } from './null-spool.js';
import type { Producer } from './producer.js';

/** Delivery errors this recent make the backend degraded. */
const RECENT_MS = 60_000;
/** The spool dropped a Line this recently and is still in use: it is refusing them. */
const SPOOL_REFUSING_MS = 5000;

type Happened<T> = { at: number } & T;

export interface HealthInputs {
  closing: boolean;
  producer: Pick<Producer, 'connected' | 'brokerUp' | 'fatal' | 'lastError' | 'stalled' | 'stallReason'>;
  /** NULL_SPOOL without a disk: ready, empty, never dropping. */
  spool: Pick<SpoolPort, 'ready' | 'records' | 'isEmpty'>;
  spilling: boolean;
  /** Spooled records produced, no report yet. */
  spoolInFlight: number;
  lastSpoolDrop: Happened<{ reason: SpoolDropReason }> | null;
  /** The last Line given up on (refused or failed delivery). */
  lastFailure: Happened<{ what: string }> | null;
  /** produce() said QUEUE_FULL last. */
  queueFull: boolean;
  /** Lines in the backend's own queue, and how many it may hold. */
  waiting: number;
  capacity: number;
}

export function kafkaHealth(now: number, h: HealthInputs): BackendHealth {
  const p = h.producer;
  if (h.closing) return { state: 'down', reason: 'closing' };
  if (p.fatal !== null) return { state: 'down', reason: `fatal producer error, restart scratchd: ${p.fatal}` };
  const stalled = p.stalled(now);
  const spooled = spoolHealth(now, h, stalled);
  if (spooled !== null) return spooled;
  const lastError = p.lastError ? `: ${p.lastError.what}` : '';
  if (!p.connected) return { state: 'down', reason: `not connected to any broker yet${lastError}` };
  if (!p.brokerUp) return { state: 'down', reason: `no broker connection${lastError}` };
  if (stalled) return { state: 'degraded', reason: p.stallReason(now) };
  if (h.queueFull) return { state: 'degraded', reason: 'librdkafka queue full, Lines waiting' };
  if (h.waiting > h.capacity / 2) return { state: 'degraded', reason: `queue ${h.waiting}/${h.capacity}` };
  if (h.lastFailure !== null && now - h.lastFailure.at < RECENT_MS) {
    return { state: 'degraded', reason: `Lines dropped in the last minute: ${h.lastFailure.what}` };
  }
  return { state: 'ok' };
}

/** What the spool says, or null when it has nothing to say (always so without a disk). */
function spoolHealth(now: number, h: HealthInputs, stalled: boolean): BackendHealth | null {
  const { producer: p, spool } = h;
  const drop = h.lastSpoolDrop;
  if (drop !== null && now - drop.at < SPOOL_REFUSING_MS && (h.spilling || !spool.isEmpty())) {
    return { state: 'down', reason: `the spool drops Lines (${drop.reason}); ${spool.records} Lines safe in it` };
  }
  if (!spool.ready) return { state: 'spooling', reason: 'opening the spool' };
  // Records in flight to a broker that answers are as good as delivered.
  const held = spool.records - h.spoolInFlight;
  if (h.spilling || held > 0 || (!spool.isEmpty() && (!p.connected || !p.brokerUp || stalled))) {
    const why = !p.connected ? 'not connected to any broker yet' : !p.brokerUp ? 'no broker connection'
      : stalled ? p.stallReason(now) : 'draining the spool';
    return { state: 'spooling', reason: `${why}; ${spool.records} Lines safe in the spool` };
  }
  if (drop !== null && now - drop.at < RECENT_MS) {
    return { state: 'degraded', reason: `the spool dropped Lines in the last minute (${drop.reason})` };
  }
  return null;
}
