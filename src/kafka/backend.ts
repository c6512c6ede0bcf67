/**
 * Kafka backend: Lines → one node-rdkafka Producer per process.
 *
 * The request path only touches `send`, which puts the Line into this
 * backend's own bounded Channel. A pump loop moves batches from the channel
 * into librdkafka (`produce`), whose threads do batching, compression, I/O,
 * retries and reconnects. Delivery reports decide `persisted` / `failed`.
 *
 * Where Lines wait, and what bounds them, during a broker outage:
 *   1. librdkafka's queue (queue.buffering.max.messages / .kbytes); nothing
 *      there expires by time (message.timeout.ms=0), so only space bounds it;
 *   2. once that is full, produce() says QUEUE_FULL and the pump backs off and
 *      retries (`retried`), so Lines pile up in the channel (queueCapacity);
 *   3. once the channel is full too, `send` drops (`dropped`).
 * Nothing is lost without being counted: a delivery error, a Line librdkafka
 * refuses outright, and whatever close() could not flush in time are all
 * counted as dropped.
 */
import { hostname } from 'node:os';
import Kafka from 'node-rdkafka';
import { ignoreLoss, newCounters, type Backend, type BackendCounters, type BackendHealth, type LossListener } from '../backend.js';
import { Channel } from '../channel.js';
import type { KafkaConfig } from '../config.js';
import type { Line } from '../line.js';
import { rateLimited, type Logger } from '../log.js';
import { observeKafkaDeliveryLatency } from '../stats/metrics.js';

/** `backends.kafka` from the config; `rdkafka` is laid over RDKAFKA_DEFAULTS. */
export type { KafkaConfig };

/**
 * Production defaults, each overridable through `backends.kafka.rdkafka`
 * (the README has the table).
 */
const RDKAFKA_DEFAULTS: Readonly<Record<string, string | number | boolean>> = {
  'client.id': `scratchd@${hostname()}`,
  // Every Line acknowledged by all in-sync replicas, and librdkafka's own
  // retries cannot duplicate or reorder within a partition.
  acks: 'all',
  'enable.idempotence': true,
  // JSON compresses ~5-10x; lz4 costs the least CPU for that.
  'compression.type': 'lz4',
  // Beacons arrive continuously: 5 ms of batching is invisible to analytics
  // and cuts requests to the broker by orders of magnitude.
  'linger.ms': 5,
  // The outage buffer: bounded by space, not by time (see the file comment).
  'queue.buffering.max.messages': 500_000,
  'queue.buffering.max.kbytes': 262_144,
  'message.timeout.ms': 0,
  // Notice dead peers (NAT/firewall idle timeouts, a paused broker) and get
  // back to a returning broker within a couple of seconds, not librdkafka's 10.
  'socket.keepalive.enable': true,
  'reconnect.backoff.max.ms': 2000,
  // Broker states for health(); a small JSON every 5 s.
  'statistics.interval.ms': 5000,
  // librdkafka logs every idle connection close the broker makes.
  'log.connection.close': false,
};

/**
 * What librdkafka says about `backends.kafka.rdkafka` (unknown property,
 * value out of range), or null when it takes them; for `--check` and
 * start-up, which otherwise would meet it as an exception from the
 * KafkaBackend constructor. Nothing connects.
 */
export function rdkafkaConfigError(rdkafka: KafkaConfig['rdkafka']): string | null {
  try {
    new Kafka.Producer({ ...RDKAFKA_DEFAULTS, ...rdkafka, dr_cb: true });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

const ERR = Kafka.CODES.ERRORS;
const CONNECT_TIMEOUT_MS = 5000;
const CONNECT_RETRY_MS = 1000;
const QUEUE_FULL_BACKOFF_MS = 50;
/** Produce this many Lines, then let the event loop serve requests. */
const PRODUCE_SLICE = 1024;
/** health(): delivery errors this recent make the backend degraded. */
const RECENT_MS = 60_000;
/** health(): Lines in flight without any delivery report for this long: the broker is stuck. */
const STALL_MS = 15_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function code(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number'
    ? (err as { code: number }).code : undefined;
}

export class KafkaBackend implements Backend {
  readonly name = 'kafka';
  readonly counters: BackendCounters = newCounters();
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
  private pumping: Promise<void> = Promise.resolve();

  constructor(private readonly config: KafkaConfig, private readonly log: Logger) {
    this.limited = rateLimited(log);
    this.channel = new Channel<Line>(config.queueCapacity);
    this.producer = this.newProducer();
  }

  /**
   * A producer with our handlers. Invalid librdkafka settings throw here,
   * at construction, so a bad config fails start-up instead of every Line.
   */
  private newProducer(): Kafka.Producer {
    const producer = new Kafka.Producer({ ...RDKAFKA_DEFAULTS, ...this.config.rdkafka, dr_cb: true });
    producer.on('delivery-report', this.onReport);
    // node-rdkafka hands librdkafka's error events (and delivery errors) over
    // as text only (code -1), so they are told apart by their text.
    producer.on('event.error', (err) => {
      if (/all broker connections are down/i.test(err.message)) this.brokerUp = false;
      this.lastError = { at: Date.now(), what: err.message };
      this.limited(`error ${err.message}`, { err: err.message }, 'librdkafka error');
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
    this.connect();
    this.pumping = this.pump().catch((err: unknown) => {
      this.log.error({ err }, 'kafka pump stopped');
    });
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
    if (!this.connected) return { state: 'down', reason: `not connected to any broker yet${this.lastError ? `: ${this.lastError.what}` : ''}` };
    if (!this.brokerUp) return { state: 'down', reason: `no broker connection${this.lastError ? `: ${this.lastError.what}` : ''}` };
    if (this.inFlight > 0 && now - this.lastReportAt > STALL_MS) {
      return { state: 'degraded', reason: `${this.inFlight} messages without a delivery report for ${Math.round((now - this.lastReportAt) / 1000)} s` };
    }
    if (this.queueFull) return { state: 'degraded', reason: 'librdkafka queue full, Lines waiting' };
    if (this.channel.length > this.channel.capacity / 2) return { state: 'degraded', reason: `queue ${this.channel.length}/${this.channel.capacity}` };
    if (this.lastFailure !== null && now - this.lastFailure.at < RECENT_MS) {
      return { state: 'degraded', reason: `Lines dropped in the last minute: ${this.lastFailure.what}` };
    }
    return { state: 'ok' };
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
    await this.pumping; // everything queued is in librdkafka now, or counted as dropped
    clearTimeout(giveUp);
    this.givingUp = true; // a connect attempt still under way disconnects when it completes
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);

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
      // disconnect(0): no second flush; what is left was counted as dropped above.
      await new Promise<void>((resolve) => this.producer.disconnect(0, () => resolve()));
      this.connected = false;
    }
    this.log.info({ ...this.counters }, 'kafka backend closed');
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
      if (err) {
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
        this.producer.disconnect(0, () => {});
        return;
      }
      this.connected = true;
      this.brokerUp = true;
      this.producer.setPollInterval(50); // delivery reports reach JS only through poll()
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
      this.batch = batch;
      this.batchAt = 0;
      let slice = 0;
      while (this.batchAt < batch.length && !this.givingUp) {
        if (!this.connected) {
          await this.pause(CONNECT_RETRY_MS);
          continue;
        }
        const line = batch[this.batchAt];
        try {
          // No opaque: node-rdkafka keeps a persistent handle per message for
          // one, which cost ~1.4 µs per Line on the serving thread; the report's
          // timestamp (the Line's time) gives the delivery latency instead.
          this.producer.produce(line.flavor.topic, null, line.json, this.keyOf(line), line.time, undefined, this.headersOf(line));
          this.inFlight++;
          this.batchAt++;
          this.queueFull = false;
          if (++slice === PRODUCE_SLICE) {
            slice = 0;
            await new Promise((r) => setImmediate(r));
          }
        } catch (err) {
          if (code(err) === ERR.ERR__QUEUE_FULL) {
            // librdkafka holds as much as it may; wait for deliveries to make room.
            this.queueFull = true;
            this.counters.retried++;
            await this.pause(QUEUE_FULL_BACKOFF_MS);
            continue;
          }
          // Refused outright (e.g. larger than message.max.bytes): it never will be accepted.
          if (code(err) === ERR.ERR__FATAL && this.fatal === null) {
            // Not recovered from here (a new producer would have to take over
            // the old one's queue); it is made as loud as it gets instead.
            this.fatal = (err as Error).message;
            this.log.fatal({ err: this.fatal }, 'kafka producer hit a fatal error; every Line is dropped until scratchd restarts');
          }
          this.lastFailure = { at: Date.now(), what: `refused: ${(err as Error).message}` };
          this.counters.failed++;
          this.counters.dropped++;
          this.onLoss(this.name, line.flavor.name, line.time, 'refused');
          this.batchAt++;
          this.limited(`produce ${code(err)}`, { code: code(err), err: (err as Error).message, topic: line.flavor.topic },
            'kafka refused a Line, dropped');
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

  /** Header `flavor` (replay and rebuild find a topic's flavor by it): one array per flavor, not per Line. */
  private readonly headers = new Map<string, Kafka.MessageHeader[]>();
  private headersOf(line: Line): Kafka.MessageHeader[] {
    let h = this.headers.get(line.flavor.name);
    if (h === undefined) this.headers.set(line.flavor.name, (h = [{ flavor: line.flavor.name }]));
    return h;
  }

  /**
   * The key is the named Values field. Lines carry only the serialized JSON
   * (serialized once on the request path for every backend), so the field
   * is parsed back out here, and only when a key is configured: the default
   * (no key) costs no parse per Line.
   */
  private keyOf(line: Line): string | null {
    const field = this.config.key;
    if (field === null) return null;
    const v = (JSON.parse(line.json.toString()) as Record<string, unknown>)[field];
    if (v === undefined || v === null) return null;
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  private readonly onReport = (err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport): void => {
    if (this.settled) return;
    this.inFlight--;
    this.lastReportAt = Date.now();
    if (err) {
      // Final: librdkafka has retried what it could. Counted as both a failure and a lost Line.
      this.counters.failed++;
      this.counters.dropped++;
      this.lastFailure = { at: Date.now(), what: `delivery failed: ${err.message}` };
      this.limited(`delivery ${err.message}`, { err: err.message, topic: report?.topic }, 'kafka delivery failed, Line dropped');
      return;
    }
    this.counters.persisted++;
    this.brokerUp = true;
    if (typeof report.timestamp === 'number') observeKafkaDeliveryLatency((Date.now() - report.timestamp) / 1000);
  };
}
