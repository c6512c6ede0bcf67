/**
 * Kafka backend: Lines → one node-rdkafka Producer per process.
 *
 * The request path only touches `send`, which puts the Line into this
 * backend's own bounded Channel. A pump loop moves batches from the channel
 * into librdkafka (`produce`), whose threads do batching, compression, I/O,
 * retries and reconnects. Delivery reports decide `persisted` / `failed`.
 *
 * Where Lines wait, and what bounds them, during a broker outage, without
 * the spool (`spool` absent or off):
 *   1. librdkafka's queue (queue.buffering.max.messages / .kbytes); nothing
 *      there expires by time (message.timeout.ms=0), so only space bounds it;
 *   2. once that is full, produce() says QUEUE_FULL and the pump backs off and
 *      retries (`retried`), so Lines pile up in the channel (queueCapacity);
 *   3. once the channel is full too, `send` drops (`dropped`).
 * With the spool (src/kafka/spool/), the backend switches to spilling when
 * no broker is reachable, messages get no delivery report for STALL_MS,
 * librdkafka holds more than half its queue, or produce() says QUEUE_FULL: from then on every Line goes to the spool's
 * tail, and a drainer produces from its head and acknowledges on delivery
 * reports; every message carries what it is as its opaque (inflight.ts), so
 * each report is matched to its own Line or record; normal mode resumes when
 * the spool is empty, so each topic keeps arrival order. Only maxBytes and
 * minFreeBytes of disk bound an outage then.
 * Nothing is lost without being counted: a delivery error, a Line librdkafka
 * refuses outright, a Line the spool cannot take, and whatever close() could
 * not flush (or spool) in time are all counted as dropped.
 */
import { performance } from 'node:perf_hooks';
import Kafka from 'node-rdkafka';
import { ignoreLoss, newCounters, type Backend, type BackendCounters, type BackendHealth, type LossListener } from '../backend.js';
import { Channel } from '../channel.js';
import type { KafkaConfig } from '../config.js';
import { instanceOf } from '../instance.js';
import type { Line } from '../line.js';
import type { Flavor } from '../flavor.js';
import { rateLimited, type Logger } from '../log.js';
import { InFlight, isSpooled, type Sent, type SpooledRef } from './inflight.js';
import { DeliveryLatency } from './latency.js';
import { DrainPace } from './drain-pace.js';
import { ProcessLoad } from './process-load.js';
import { code, codeName, ERR, retriable, unknownTopic } from './errors.js';
import { disconnectProducer } from './disconnect.js';
import { newProducer, RDKAFKA_DEFAULTS } from './settings.js';
import { Spool, type SpoolDropReason } from './spool/spool.js';
import type { KafkaStatsSource, SpoolSnapshot } from './stats.js';

/** `backends.kafka` from the config; `rdkafka` is laid over RDKAFKA_DEFAULTS. */
export type { KafkaConfig };

const CONNECT_TIMEOUT_MS = 5000;
const CONNECT_RETRY_MS = 1000;
/**
 * At start, Lines wait this long for librdkafka's first connection, as for
 * a slow broker, before the spool takes them: a routine start or restart
 * against a healthy broker spools nothing and warns of nothing. Short: a
 * crash loses what waits in RAM.
 */
const FIRST_CONNECT_GRACE_MS = 1000;
const QUEUE_FULL_BACKOFF_MS = 50;
/** Produce this many Lines, then let the event loop serve requests. */
const PRODUCE_SLICE = 1024;
/** health(): delivery errors this recent make the backend degraded. */
const RECENT_MS = 60_000;
/**
 * Lines in flight without any delivery report for this long: the broker is
 * stuck (a black hole, a paused process) though its connection looks up;
 * new Lines go to the spool then, and health says so.
 */
const STALL_MS = 5000;
/** health(): the spool dropped a Line this recently and is still in use: it is refusing them. */
const SPOOL_REFUSING_MS = 5000;
/** The drainer's pause after an error, doubling up to the most. */
const DRAIN_RETRY_MIN_MS = 100;
const DRAIN_RETRY_MAX_MS = 10_000;

/**
 * How often delivery reports are fetched from librdkafka. node-rdkafka emits
 * a poll's worth of reports in one stretch of the event loop, which requests
 * wait behind; polling at linger.ms's cadence takes each produce batch's
 * reports as they come instead of several batches at once.
 */
const POLL_MS = 5;

/** Spooled records produced and not yet reported on, at most. */
const DRAIN_WINDOW = 10_000;
/** Records read from the spool per step, then the event loop serves requests. */
const DRAIN_SLICE = 512;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class KafkaBackend implements Backend, KafkaStatsSource {
  readonly name = 'kafka';
  readonly counters: BackendCounters = newCounters();
  readonly deliveryLatency = new DeliveryLatency();
  onLoss: LossListener = ignoreLoss;
  private readonly channel: Channel<Line>;
  private producer: Kafka.Producer;
  private readonly limited: ReturnType<typeof rateLimited>;
  /** The batch the pump is producing from, and how far it got. */
  private batch: Line[] = [];
  private batchAt = 0;
  /** Produced, no delivery report yet. */
  private inFlight = 0;
  private connected = false;
  private brokerUp = false;
  private queueFull = false;
  private lastReportAt = Date.now();
  private lastError: { at: number; what: string } | null = null;
  /** The last Line given up on (refused or failed delivery): health is degraded for a while. */
  private lastFailure: { at: number; what: string } | null = null;
  /** librdkafka's fatal error (idempotence broken): this producer refuses everything from now on. */
  private fatal: string | null = null;
  private closing = false;
  /** close()'s deadline passed: drop what is still waiting. */
  private givingUp = false;
  /** close() counted what was left: later reports change nothing. */
  private settled = false;
  private wakePump: (() => void) | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  /** The first connect attempt succeeded or failed: until then (FIRST_CONNECT_GRACE_MS at most) Lines wait for it. */
  private firstConnectDone = false;
  private startedAt = Date.now();
  private pumping: Promise<void> = Promise.resolve();
  /**
   * The headers of each flavor's messages (`flavor`, `instance`), made once.
   * Spooled records take `instance` from this config when drained, not from
   * the record: a spool is one instance's own disk, and its format stays as
   * it is (a spool written before a rename of the instance drains under the
   * new name).
   */
  private readonly headers = new Map<string, Kafka.MessageHeader[]>();
  /**
   * Each flavor as its Lines last came (a reload makes new Flavor objects):
   * the topic of its spooled records. Built from the start-up flavors, kept
   * current by the pump, so a flavor added or re-pointed by a reload has its
   * spooled Lines sent to its topic as configured now.
   */
  private readonly byName = new Map<string, Flavor>();

  // The spool (null when off) and the mode switch.
  private spool: Spool | null = null;
  private spoolOpened: Promise<void> = Promise.resolve();
  /** Normal-path Lines librdkafka holds (spool on only): re-spooled if they come back failed or are left at shutdown. */
  private readonly normal: InFlight | null;
  /** New Lines go to the spool's tail while true. */
  private spilling = false;
  /** Spill once librdkafka holds this many messages. */
  private readonly highWater: number;
  /** Spooled records produced, no report yet. */
  private spoolInFlight = 0;
  /** A spooled record failed: read again from the watermark once the others reported. */
  private rewindPending = false;
  private draining: Promise<void> = Promise.resolve();
  private stopDrain = false;
  private lastSpoolDrop: { at: number; reason: SpoolDropReason } | null = null;
  /** Paces the drainer by what the request path leaves of the event loop (drain-pace.ts). */
  private readonly pace = new DrainPace();
  private readonly load = new ProcessLoad();
  /**
   * Spooled records given up on (refused, failed for good): the spool
   * counts them acknowledged, but they were not drained into Kafka.
   */
  private spoolGivenUp = 0;
  /** Errors of the drainer (it retries after each). */
  private drainErrors = 0;
  /** (time, drained) samples for the drain rate. */
  private rateFrom = { at: Date.now(), drained: 0 };
  private rate = 0;

  private readonly instance: string;

  constructor(private readonly config: KafkaConfig, private readonly log: Logger, flavors: readonly Flavor[] = []) {
    this.instance = instanceOf(config);
    this.limited = rateLimited(log);
    this.channel = new Channel<Line>(config.queueCapacity, config.queueBytes, (line) => line.json.length);
    for (const f of flavors) this.byName.set(f.name, f);
    if (config.spool?.enabled === true) {
      this.spool = new Spool(config.spool, log.child({ component: 'kafka-spool' }), this.onSpoolDrop);
    }
    this.normal = this.spool === null ? null : new InFlight();
    const max = Number(config.rdkafka['queue.buffering.max.messages'] ?? RDKAFKA_DEFAULTS['queue.buffering.max.messages']);
    this.highWater = Math.max(1, Math.floor((Number.isFinite(max) ? max : 100_000) / 2));
    this.producer = this.newProducer();
  }

  private headersOf(flavor: string): Kafka.MessageHeader[] {
    let h = this.headers.get(flavor);
    if (h === undefined) this.headers.set(flavor, (h = [{ flavor }, { instance: this.instance }]));
    return h;
  }

  /**
   * A producer with our handlers. Invalid librdkafka settings throw here,
   * at construction, so a bad config fails start-up instead of every Line.
   */
  private newProducer(): Kafka.Producer {
    const producer = newProducer(this.config.rdkafka);
    producer.on('delivery-report', this.onReport);
    // librdkafka's own log (its `debug` setting) at debug level.
    producer.on('event.log', (ev: { severity: number; fac: string; message: string }) => {
      this.log.debug({ fac: ev.fac, severity: ev.severity }, `librdkafka: ${ev.message}`);
    });
    // node-rdkafka hands librdkafka's error events (and delivery errors) over
    // as text only (code -1), so they are told apart by their text.
    producer.on('event.error', (err) => {
      if (/all broker connections are down/i.test(err.message)) this.brokerUp = false;
      this.lastError = { at: Date.now(), what: err.message };
      this.limited(`error ${err.code}`, { code: err.code, err: err.message }, 'librdkafka error');
    });
    producer.on('event.stats', (ev: { message: string }) => {
      try {
        const stats = JSON.parse(ev.message) as { brokers?: Record<string, { state?: string; nodeid?: number }> };
        this.brokerUp = Object.values(stats.brokers ?? {}).some((b) => b.state === 'UP' && (b.nodeid ?? -1) >= 0);
      } catch { /* a stats blob we cannot read changes nothing */ }
    });
    return producer;
  }

  /** Does not wait for a broker: an absent broker must not stop start-up. */
  async start(): Promise<void> {
    this.startedAt = Date.now();
    this.connect();
    if (this.spool !== null) {
      // In the background: serving starts at once; Lines wait in the channel meanwhile.
      const spool = this.spool;
      this.spoolOpened = spool.open().then(() => {
        if (!spool.isEmpty()) this.startSpilling('the spool holds Lines from before', 'info');
      }, (err: unknown) => {
        this.log.error({ err: (err as Error).message, dir: spool.config.dir }, 'kafka spool cannot be opened; running without it');
        this.spool = null;
      });
      this.draining = this.drainRetrying();
    }
    this.pumping = this.pump().catch((err: unknown) => {
      this.log.error({ err }, 'kafka pump stopped');
    });
  }

  spoolSnapshot(): SpoolSnapshot | null {
    const s = this.spool;
    if (s === null) return null;
    const now = Date.now();
    const drained = s.drained - this.spoolGivenUp;
    if (now - this.rateFrom.at >= 5000) {
      this.rate = ((drained - this.rateFrom.drained) * 1000) / (now - this.rateFrom.at);
      this.rateFrom = { at: now, drained };
    }
    const oldest = s.oldest();
    return {
      ready: s.ready ? 1 : 0,
      spilling: this.spilling ? 1 : 0,
      bytes: s.diskBytes,
      records: s.records,
      segments: s.segmentCount,
      oldest_age_seconds: oldest === null ? 0 : Math.max(0, (now - oldest) / 1000),
      drain_rate_per_second: this.rate,
      drain_duty: this.pace.duty,
      spilled_total: s.spilled,
      drained_total: drained,
      drain_errors_total: this.drainErrors,
      dropped_total: { ...s.drops },
      quarantined_total: s.quarantined,
    };
  }

  send(line: Line): boolean {
    if (this.channel.send(line)) return true;
    this.counters.dropped++;
    this.onLoss(this.name, line.flavor.name, line.time, this.closing ? 'drain_timeout' : 'queue_full');
    this.limited('dropped', { queued: this.queued() }, this.closing ? 'kafka backend closing, Line dropped' : 'kafka queue full, Line dropped');
    return false;
  }

  queued(): number {
    return this.channel.length + (this.batch.length - this.batchAt) + this.inFlight;
  }

  health(): BackendHealth {
    const now = Date.now();
    if (this.closing) return { state: 'down', reason: 'closing' };
    if (this.fatal !== null) return { state: 'down', reason: `fatal producer error, restart scratchd: ${this.fatal}` };
    const stalled = this.stalled(now);
    const spool = this.spool;
    if (spool !== null) {
      // What the spool holds decides, not the last event: Lines in it (from
      // an outage, a hand-over, a previous run) are safe, but not delivered.
      const drop = this.lastSpoolDrop;
      if (drop !== null && now - drop.at < SPOOL_REFUSING_MS && (this.spilling || !spool.isEmpty())) {
        return { state: 'down', reason: `the spool drops Lines (${drop.reason}); ${spool.records} Lines safe in it` };
      }
      if (!spool.ready) return { state: 'spooling', reason: 'opening the spool' };
      // Records in flight to a broker that answers are as good as delivered.
      const held = spool.records - this.spoolInFlight;
      if (this.spilling || held > 0 || (!spool.isEmpty() && (!this.connected || !this.brokerUp || stalled))) {
        const why = !this.connected ? 'not connected to any broker yet' : !this.brokerUp ? 'no broker connection'
          : stalled ? this.stallReason(now) : 'draining the spool';
        return { state: 'spooling', reason: `${why}; ${spool.records} Lines safe in the spool` };
      }
      if (drop !== null && now - drop.at < RECENT_MS) {
        return { state: 'degraded', reason: `the spool dropped Lines in the last minute (${drop.reason})` };
      }
    }
    if (!this.connected) return { state: 'down', reason: `not connected to any broker yet${this.lastError ? `: ${this.lastError.what}` : ''}` };
    if (!this.brokerUp) return { state: 'down', reason: `no broker connection${this.lastError ? `: ${this.lastError.what}` : ''}` };
    if (stalled) return { state: 'degraded', reason: this.stallReason(now) };
    if (this.queueFull) return { state: 'degraded', reason: 'librdkafka queue full, Lines waiting' };
    if (this.channel.length > this.channel.capacity / 2) return { state: 'degraded', reason: `queue ${this.channel.length}/${this.channel.capacity}` };
    if (this.lastFailure !== null && now - this.lastFailure.at < RECENT_MS) {
      return { state: 'degraded', reason: `Lines dropped in the last minute: ${this.lastFailure.what}` };
    }
    return { state: 'ok' };
  }

  /** Messages in librdkafka and no delivery report for STALL_MS: the broker takes them and never answers. */
  private stalled(now: number): boolean {
    return this.inFlight > 0 && now - this.lastReportAt > STALL_MS;
  }

  private stallReason(now: number): string {
    return `${this.inFlight} messages in librdkafka without a delivery report for ${Math.round((now - this.lastReportAt) / 1000)} s`;
  }

  /** Nothing is held open per file; log rotation does not concern Kafka. */
  reopen(): void {}

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const deadline = Date.now() + this.config.flushTimeoutMs;
    this.channel.close();
    const giveUp = setTimeout(() => {
      this.givingUp = true;
      this.wakePump?.();
    }, this.config.flushTimeoutMs);
    await this.pumping; // everything queued is in librdkafka or the spool now, or counted as dropped
    clearTimeout(giveUp);
    this.givingUp = true; // a connect attempt still under way disconnects when it completes
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.spool !== null) {
      await this.closeWithSpool(deadline);
      return;
    }

    if (this.connected) {
      await new Promise<void>((resolve) => this.producer.flush(Math.max(0, deadline - Date.now()), () => resolve()));
      // flush() returns when librdkafka is done; the reports reach JS a moment later.
      while (this.inFlight > 0 && Date.now() < deadline + 200) await sleep(10);
    }
    // From here on reports are ignored: a Line delivered after the deadline
    // stays counted as dropped (an overcount of loss, never an undercount).
    this.settled = true;
    if (this.inFlight > 0) {
      this.counters.dropped += this.inFlight;
      this.log.error({ dropped: this.inFlight, flushTimeoutMs: this.config.flushTimeoutMs },
        'kafka: Lines not delivered within the flush timeout, dropped');
      this.inFlight = 0;
    }
    if (this.connected) {
      // No second flush: what is left was counted as dropped above.
      await disconnectProducer(this.producer, 0);
      this.connected = false;
    }
    this.log.info({ ...this.counters }, 'kafka backend closed');
  }

  /**
   * Shutdown with the spool: while a broker answers, keep delivering (the
   * spool's head too) until everything is delivered or the deadline; then
   * whatever librdkafka still holds of the normal path is written to the
   * spool's tail instead of being lost (node-rdkafka has no purge: the
   * backend's own references are what is written), the spool is flushed and
   * closed, and the next start delivers it. Spooled records not yet
   * acknowledged are still in the spool.
   */
  private async closeWithSpool(deadline: number): Promise<void> {
    const spool = this.spool!;
    await this.spoolOpened;
    // Drain the spool's head too for the first half of the flush timeout...
    const drainUntil = deadline - this.config.flushTimeoutMs / 2;
    while (Date.now() < drainUntil && this.connected && this.brokerUp &&
      (this.inFlight > 0 || (this.spilling && this.spool !== null && !spool.isEmpty()))) {
      await sleep(20);
    }
    this.stopDrain = true;
    await this.draining;
    // ...then produce nothing more and wait for the reports of what is in
    // flight: a spooled record whose report came is not sent again at the
    // next start. Those still without one at the deadline stay in the spool.
    while (Date.now() < deadline && this.connected && this.brokerUp && !this.stalled(Date.now()) && this.inFlight > 0) await sleep(10);
    this.settled = true;
    if (this.spoolInFlight > 0) {
      this.log.warn({ records: this.spoolInFlight }, 'kafka: spooled records without a delivery report at shutdown stay in the spool; the next start sends them again');
    }
    const left = this.normal!.takeAll();
    if (this.spool !== null && left.length > 0) {
      for (const line of left) this.spill(line);
      this.log.warn({ lines: left.length }, 'kafka: Lines librdkafka still held at shutdown written to the spool');
    } else if (left.length > 0) {
      this.counters.dropped += left.length;
      for (const line of left) this.onLoss(this.name, line.flavor.name, line.time, 'drain_timeout');
      this.log.error({ dropped: left.length }, 'kafka: Lines not delivered within the flush timeout, dropped');
    }
    this.inFlight = 0;
    this.spoolInFlight = 0;
    if (this.spool !== null) await this.spool.close();
    if (this.connected) {
      await disconnectProducer(this.producer, 0);
      this.connected = false;
    }
    this.log.info({ ...this.counters, spool: this.spoolSnapshot() }, 'kafka backend closed');
  }

  /**
   * node-rdkafka's connect() fetches metadata and fails when no broker
   * answers; produce() refuses until it succeeded. So connect is retried in
   * the background while Lines wait in the channel, each time with a new
   * Producer: one whose connect() failed never delivers reports after a
   * later successful connect (node-rdkafka 3.6). Once connected, broker
   * outages are librdkafka's business: it reconnects by itself.
   */
  private connect(): void {
    this.connectTimer = null;
    if (this.givingUp) return;
    this.log.debug('connect attempt');
    this.producer.connect({ timeout: CONNECT_TIMEOUT_MS, allTopics: false }, (err) => {
      this.firstConnectDone = true;
      if (err) {
        this.wakePump?.();
        this.log.debug({ err: err.message }, 'connect attempt failed');
        this.lastError = { at: Date.now(), what: `connect: ${err.message}` };
        this.limited('connect', { err: err.message }, 'kafka: no broker answers yet, retrying');
        if (!this.givingUp) {
          this.producer = this.newProducer();
          this.connectTimer = setTimeout(() => this.connect(), CONNECT_RETRY_MS);
        }
        return;
      }
      if (this.givingUp) {
        void disconnectProducer(this.producer, 0);
        return;
      }
      this.connected = true;
      this.brokerUp = true;
      this.producer.setPollInterval(POLL_MS); // delivery reports reach JS only through poll()
      this.log.info('kafka producer connected');
      this.wakePump?.();
    });
  }

  /** Resolves after `ms`, or earlier when connect or close wakes the pump. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wakePump = null; resolve(); }, ms);
      this.wakePump = () => { clearTimeout(timer); this.wakePump = null; resolve(); };
    });
  }

  private async pump(): Promise<void> {
    for (;;) {
      const batch = await this.channel.receive();
      if (batch.length === 0) return; // closed and empty
      if (this.spool !== null && !this.spool.ready) await this.spoolOpened;
      this.batch = batch;
      this.batchAt = 0;
      let slice = 0;
      while (this.batchAt < batch.length && !this.givingUp) {
        const line = batch[this.batchAt]!;
        if (this.byName.get(line.flavor.name) !== line.flavor) this.byName.set(line.flavor.name, line.flavor);
        if (this.spool !== null) {
          if (!this.spilling) {
            if (!this.connected && !this.firstConnectDone && Date.now() - this.startedAt < FIRST_CONNECT_GRACE_MS) {
              await this.pause(50); // connect wakes it
              continue;
            }
            if (!this.connected) this.startSpilling('not connected to any broker');
            else if (!this.brokerUp) this.startSpilling('no broker connection');
            else if (this.stalled(Date.now())) this.startSpilling(this.stallReason(Date.now()));
            else if (this.inFlight >= this.highWater) this.startSpilling('librdkafka holds half its queue');
          }
          if (this.spilling) {
            this.spill(line);
            this.batchAt++;
            continue;
          }
        } else if (!this.connected) {
          await this.pause(CONNECT_RETRY_MS);
          continue;
        }
        try {
          // The Line is its own opaque: its report names it exactly (inflight.ts).
          this.producer.produce(line.flavor.topic, null, line.json, this.keyOf(line.json), line.time, line, this.headersOf(line.flavor.name));
          this.inFlight++;
          this.normal?.add(line);
          this.batchAt++;
          this.queueFull = false;
          if (++slice === PRODUCE_SLICE) {
            slice = 0;
            await new Promise((r) => setImmediate(r));
          }
        } catch (err) {
          if (code(err) === ERR.ERR__QUEUE_FULL) {
            this.queueFull = true;
            if (this.spool !== null) {
              this.startSpilling('librdkafka queue full');
              continue; // this Line goes to the spool
            }
            // librdkafka holds as much as it may; wait for deliveries to make room.
            this.counters.retried++;
            await this.pause(QUEUE_FULL_BACKOFF_MS);
            continue;
          }
          if (this.spool !== null && this.mayRetry(err as Kafka.LibrdKafkaError)) {
            this.startSpilling(`produce: ${(err as Error).message}`);
            continue; // this Line goes to the spool
          }
          this.refused(err, line.flavor.name, line.time, line.flavor.topic);
          this.batchAt++;
        }
      }
      const left = batch.length - this.batchAt;
      if (left > 0) {
        this.counters.dropped += left;
        for (let i = this.batchAt; i < batch.length; i++) this.onLoss(this.name, batch[i]!.flavor.name, batch[i]!.time, 'drain_timeout');
        this.log.error({ dropped: left }, 'kafka: Lines still waiting at the flush timeout, dropped');
      }
      this.batch = [];
      this.batchAt = 0;
    }
  }

  /** librdkafka refused a message outright (e.g. larger than message.max.bytes): it never will be accepted. */
  private refused(err: unknown, flavor: string, time: number, topic: string): void {
    if (code(err) === ERR.ERR__FATAL && this.fatal === null) {
      // Not recovered from here (a new producer would have to take over
      // the old one's queue); it is made as loud as it gets instead.
      this.fatal = (err as Error).message;
      this.log.fatal({ err: this.fatal }, 'kafka producer hit a fatal error; every Line is dropped until scratchd restarts');
    }
    this.lastFailure = { at: Date.now(), what: `refused: ${(err as Error).message}` };
    this.counters.failed++;
    this.counters.dropped++;
    this.onLoss(this.name, flavor, time, 'refused');
    this.limited(`produce ${code(err)}`, { code: code(err), err: (err as Error).message, topic },
      'kafka refused a Line, dropped');
  }

  private startSpilling(why: string, level: 'warn' | 'info' = 'warn'): void {
    if (this.spilling) return;
    this.spilling = true;
    this.log[level]({ why, inFlight: this.inFlight }, 'kafka: new Lines go to the spool');
  }

  /** A Line to the spool's tail; the spool reports what it cannot take to onSpoolDrop. */
  private spill(line: Line): void {
    this.spool?.append(line.flavor.name, line.time, line.json);
  }


  private readonly onSpoolDrop = (reason: SpoolDropReason, flavor: string, time: number): void => {
    this.counters.dropped++;
    this.lastSpoolDrop = { at: Date.now(), reason };
    this.onLoss(this.name, flavor, time, reason);
    this.limited(`spool ${reason}`, { reason }, 'kafka spool cannot take a Line, dropped');
  };

  /** The drainer, started again after any error with a growing pause: never silent, never for good. */
  private async drainRetrying(): Promise<void> {
    let backoff = DRAIN_RETRY_MIN_MS;
    while (!this.stopDrain) {
      const began = Date.now();
      try {
        await this.drain();
        return;
      } catch (err) {
        this.drainErrors++;
        if (Date.now() - began > DRAIN_RETRY_MAX_MS) backoff = DRAIN_RETRY_MIN_MS; // it had worked for a while
        this.limited('drain', { err: (err as Error).message, retryInMs: backoff, errors: this.drainErrors },
          'kafka spool drainer failed; retrying');
        // Where it was reading is unknown now: read again from the watermark.
        this.rewindPending = true;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, DRAIN_RETRY_MAX_MS);
      }
    }
  }

  /**
   * The drainer: while spilling and a broker is up, produce from the spool's
   * head, at most DRAIN_WINDOW unreported and never past librdkafka's
   * high-water mark, so its queue never fills; back to normal when the spool
   * is empty.
   */
  private async drain(): Promise<void> {
    await this.spoolOpened;
    while (!this.stopDrain) {
      const spool = this.spool;
      if (spool === null) return;
      if (!this.spilling) {
        await sleep(50);
        continue;
      }
      if (this.rewindPending) {
        if (this.spoolInFlight > 0) {
          await sleep(20);
          continue;
        }
        spool.rewind();
        this.rewindPending = false;
      }
      if (spool.isEmpty() && this.spoolInFlight === 0) {
        this.spilling = false;
        this.log.info({ drained: spool.drained }, 'kafka: the spool is empty, Lines go to librdkafka again');
        continue;
      }
      const room = Math.min(DRAIN_WINDOW - this.spoolInFlight, this.highWater - this.inFlight, DRAIN_SLICE);
      // With nothing to send, librdkafka (sparse connections) may not connect
      // to the partition leader again for minutes after an outage, so no
      // report says the broker is back: one record at a time probes for it,
      // and its delivery report sets brokerUp.
      const up = this.brokerUp && !this.stalled(Date.now());
      const probe = this.connected && !up && this.fatal === null && this.spoolInFlight === 0;
      if (!probe && (!this.connected || !up || this.fatal !== null || room <= 0)) {
        await sleep(room <= 0 ? 10 : 100);
        continue;
      }
      let records = await spool.read(probe ? 1 : room);
      let handOver = false;
      if (!probe && records.length === 0 && !this.rewindPending && spool.canHandOver()) {
        // Caught up with everything written: produce the unwritten appends
        // from RAM and give new Lines back to the normal path in the same
        // step, so no Line can come between and the order holds.
        records = spool.handOver();
        handOver = true;
      }
      if (records.length === 0 && !handOver) {
        await sleep(Math.min(50, spool.config.fsyncMs));
        continue;
      }
      const sliceStart = performance.now();
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        const topic = this.byName.get(r.flavor)?.topic ?? r.flavor;
        try {
          const ref: SpooledRef = { seq: r.seq, flavor: r.flavor, time: r.time };
          this.producer.produce(topic, null, r.payload, this.keyOf(r.payload), r.time, ref, this.headersOf(r.flavor));
          this.inFlight++;
          this.spoolInFlight++;
        } catch (err) {
          if (code(err) === ERR.ERR__QUEUE_FULL || code(err) === ERR.ERR__STATE || this.mayRetry(err as Kafka.LibrdKafkaError)) {
            // The rest of what was read goes out again after a rewind.
            this.rewindPending = true;
            if (unknownTopic(err)) await sleep(100); // until a broker says whether it exists
            break;
          }
          this.refused(err, r.flavor, r.time, topic);
          this.spoolGivenUp++;
          spool.ack(r.seq); // given up on: the watermark may pass it
        }
      }
      if (handOver && !this.rewindPending) {
        this.spilling = false;
        this.log.info({ drained: spool.drained, inFlight: this.spoolInFlight }, 'kafka: the spool caught up, Lines go to librdkafka again');
      }
      // Rest so that the whole loop stays under the pace's ceiling: the
      // drainer gets what the request path leaves (drain-pace.ts).
      const now = performance.now();
      const utilization = this.pace.due(now) ? this.load.sinceLast(now) : null;
      await sleep(Math.max(1, this.pace.step(now, utilization, now - sliceStart)));
    }
  }

  /**
   * The key is the named Values field. Lines carry only the serialized JSON
   * (serialized once on the request path for every backend), so the field
   * is parsed back out here, and only when a key is configured: the default
   * (no key) costs no parse per Line.
   */
  private keyOf(json: Buffer): string | null {
    const field = this.config.key;
    if (field === null) return null;
    const v = (JSON.parse(json.toString()) as Record<string, unknown>)[field];
    if (v === undefined || v === null) return null;
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  private readonly onReport = (err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport): void => {
    if (this.settled) return;
    this.inFlight--;
    this.lastReportAt = Date.now();
    const sent = (report as { opaque?: Sent } | undefined)?.opaque;
    if (sent === undefined) return; // every message is produced with one
    if (isSpooled(sent)) {
      this.spoolReport(err, report, sent);
      return;
    }
    const waiting = this.normal === null || this.normal.delete(sent);
    if (err) {
      this.counters.failed++;
      if (this.spool !== null && waiting && this.mayRetry(err)) {
        // Back to the spool's tail (docs/kafka.md, Kafka outages, says where that is in the topic's order).
        this.counters.retried++;
        this.startSpilling(`delivery failed: ${err.message}`);
        this.spill(sent);
        this.limited(`re-spool ${codeName(err)}`, { code: codeName(err), err: err.message, topic: report?.topic }, 'kafka delivery failed, Line re-spooled');
        return;
      }
      // Final: librdkafka has retried what it could. Counted as both a failure and a lost Line.
      this.lost(err, report?.topic, sent.flavor.name, sent.time);
      return;
    }
    this.delivered(report);
  };

  /**
   * Whether a failed message may succeed later. A topic reported unknown
   * while no broker answers is not known to be gone: auto-created just as
   * an outage began, its metadata never came back (librdkafka fails such
   * messages after topic.metadata.propagation.max.ms). Reported unknown by
   * a broker that answers, it is final, so a deleted topic's Lines are
   * dropped and never hold up the spool's drain for the other topics.
   */
  private mayRetry(err: Kafka.LibrdKafkaError): boolean {
    return retriable(err) || (unknownTopic(err) && (!this.connected || !this.brokerUp));
  }

  private delivered(report: Kafka.DeliveryReport): void {
    this.counters.persisted++;
    this.brokerUp = true;
    if (typeof report.timestamp === 'number') this.deliveryLatency.observe((Date.now() - report.timestamp) / 1000);
  }

  /** A delivery failed for good: counted and reported with the Line's own flavor and arrival time. */
  private lost(err: Kafka.LibrdKafkaError, topic: string | undefined, flavor: string, time: number): void {
    this.counters.dropped++;
    this.lastFailure = { at: Date.now(), what: `delivery failed: ${err.message}` };
    this.onLoss(this.name, flavor, time, 'delivery_failed');
    this.limited(`delivery ${codeName(err)}`, { code: codeName(err), err: err.message, topic }, 'kafka delivery failed, Line dropped');
  }

  /** A report on a record produced from the spool. */
  private spoolReport(err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport, sent: SpooledRef): void {
    this.spoolInFlight--;
    const spool = this.spool;
    if (!err) {
      spool?.ack(sent.seq);
      this.delivered(report);
      return;
    }
    this.counters.failed++;
    if (this.mayRetry(err)) {
      // Still in the spool: read again from the watermark once the others reported.
      this.counters.retried++;
      this.rewindPending = true;
      this.startSpilling(`delivery from the spool failed: ${err.message}`);
      this.limited(`spool delivery ${codeName(err)}`, { code: codeName(err), err: err.message, topic: report?.topic }, 'kafka delivery from the spool failed, will retry');
      return;
    }
    this.lost(err, report?.topic, sent.flavor, sent.time);
    this.spoolGivenUp++;
    spool?.ack(sent.seq); // given up on: the watermark may pass it
  }
}
