/**
 * The spill decision: whether the next Line goes to librdkafka or to the
 * spool's tail. The backend spills when no broker is reachable, messages
 * get no delivery report for a while, librdkafka holds more than half its
 * queue, produce() says QUEUE_FULL, or the backend's own queue is full
 * (backend.ts send()); it goes back to librdkafka only when
 * the drainer finds the spool empty (or hands its tail over), so each topic
 * keeps arrival order. Without a spool it never spills: Lines wait.
 */
import type { Logger } from '../log.js';
import { CONNECT_RETRY_MS, type Producer } from './producer.js';
import { RDKAFKA_DEFAULTS } from './settings.js';

/** route(): produce the Line. */
export const PRODUCE = 0;
/** route(): append the Line to the spool. */
export const SPOOL = -1;

/**
 * At start, Lines wait this long for librdkafka's first connection, as for
 * a slow broker, before the spool takes them: a routine start or restart
 * against a healthy broker spools nothing and warns of nothing. Short: a
 * crash loses what waits in RAM.
 */
const FIRST_CONNECT_GRACE_MS = 1000;
const GRACE_POLL_MS = 50;

export class Spill {
  private on = false;
  /** Spill once librdkafka holds this many messages. */
  readonly highWater: number;

  constructor(
    /** A spool is configured (and, once opened, did open). */
    private enabledNow: boolean,
    private readonly producer: Producer,
    private readonly log: Logger,
    rdkafka: Readonly<Record<string, unknown>>,
  ) {
    const max = Number(rdkafka['queue.buffering.max.messages'] ?? RDKAFKA_DEFAULTS['queue.buffering.max.messages']);
    this.highWater = Math.max(1, Math.floor((Number.isFinite(max) ? max : 100_000) / 2));
  }

  /** New Lines go to the spool's tail. */
  get spilling(): boolean { return this.on; }
  get enabled(): boolean { return this.enabledNow; }

  /** The spool could not be opened: the backend runs without one. */
  disable(): void {
    this.enabledNow = false;
  }

  /**
   * Where the next Line goes: PRODUCE, SPOOL, or a number of ms to wait
   * before asking again (for the first connection, or for any connection
   * without a spool).
   */
  route(): number {
    if (this.on) return SPOOL;
    const p = this.producer;
    if (!this.enabledNow) return p.connected ? PRODUCE : CONNECT_RETRY_MS;
    if (!p.connected && !p.firstConnectDone && Date.now() - p.startedAt < FIRST_CONNECT_GRACE_MS) return GRACE_POLL_MS;
    if (!p.connected) this.begin('not connected to any broker');
    else if (!p.brokerUp) this.begin('no broker connection');
    else if (p.stalled(Date.now())) this.begin(p.stallReason(Date.now()));
    else if (p.inFlight >= this.highWater) this.begin('librdkafka holds half its queue');
    return this.on ? SPOOL : PRODUCE;
  }

  /** Spill from now on; false without a spool (the caller keeps the Line). */
  begin(why: string, level: 'warn' | 'info' = 'warn'): boolean {
    if (!this.enabledNow) return false;
    if (this.on) return true;
    this.on = true;
    this.log[level]({ why, inFlight: this.producer.inFlight }, 'kafka: new Lines go to the spool');
    return true;
  }

  /** The spool is drained: Lines go to librdkafka again. */
  end(fields: object, msg: string): void {
    this.on = false;
    this.log.info(fields, msg);
  }
}
