/**
 * One node-rdkafka Producer and what is known of it: whether it connected,
 * whether a broker is up, how many messages it holds without a delivery
 * report, its last error, its fatal error. It produces, hands each delivery
 * report on, and closes; it decides nothing about Lines.
 */
import { performance } from 'node:perf_hooks';
import type Kafka from 'node-rdkafka';
import type { KafkaConfig } from '../config.js';
import type { Logger } from '../log.js';
import { code, ERR, retriable, unknownTopic } from './errors.js';
import { disconnectProducer } from './disconnect.js';
import { newProducer } from './settings.js';
import { UnknownTopics } from './unknown-topics.js';

const CONNECT_TIMEOUT_MS = 5000;
export const CONNECT_RETRY_MS = 1000;
/**
 * Lines in flight without any delivery report for this long: the broker is
 * stuck (a black hole, a paused process) though its connection looks up;
 * new Lines go to the spool then, and health says so.
 */
const STALL_MS = 5000;
/**
 * How often delivery reports are fetched from librdkafka. node-rdkafka emits
 * a poll's worth of reports in one stretch of the event loop, which requests
 * wait behind; polling at linger.ms's cadence takes each produce batch's
 * reports as they come instead of several batches at once.
 */
const POLL_MS = 5;

/** What librdkafka's statistics say of one broker (rxidle in µs, -1 before any receive). */
interface BrokerStats { state?: string; nodeid?: number; waitresp_cnt?: number; rxidle?: number }

/**
 * A broker that works answers librdkafka's requests within milliseconds; one
 * with requests waiting that sent nothing for this long is silent (paused,
 * stuck). Short, as it is seen only at a statistics tick, and a silence
 * taken for one only delays giving up on an unknown topic.
 */
const SILENT_MS = 1000;

/** Some broker has requests waiting, and none of those sent anything for SILENT_MS. */
function silent(brokers: BrokerStats[]): boolean {
  const waiting = brokers.filter((b) => (b.waitresp_cnt ?? 0) > 0);
  return waiting.length > 0 && waiting.every((b) => (b.rxidle ?? -1) > SILENT_MS * 1000);
}

export type ReportListener = (err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport) => void;
type Limited = (kind: string, fields: object, msg: string) => void;

export class Producer {
  private handle: Kafka.Producer;
  private connectedNow = false;
  private up = false;
  /** Produced, no delivery report yet. */
  private held = 0;
  private lastReportAt = Date.now();
  private lastErr: { at: number; what: string } | null = null;
  private fatalErr: string | null = null;
  private firstDone = false;
  private started = Date.now();
  /** close() counted what was left: later reports change nothing. */
  private settled = false;
  private stopped = false;
  private connectTimer: NodeJS.Timeout | null = null;
  private readonly unknownTopics: UnknownTopics;

  /**
   * Invalid librdkafka settings throw here, at construction, so a bad config
   * fails start-up instead of every Line.
   */
  constructor(
    private readonly rdkafka: KafkaConfig['rdkafka'],
    private readonly log: Logger,
    private readonly limited: Limited,
    private readonly onReport: ReportListener,
    /** Connected, or a connect attempt failed: whoever waits for it looks again. */
    private readonly onConnectAttempt: () => void,
  ) {
    this.unknownTopics = new UnknownTopics(rdkafka);
    this.handle = this.newHandle();
  }

  get connected(): boolean { return this.connectedNow; }
  get brokerUp(): boolean { return this.up; }
  get inFlight(): number { return this.held; }
  get lastError(): { at: number; what: string } | null { return this.lastErr; }
  get fatal(): string | null { return this.fatalErr; }
  /** The first connect attempt succeeded or failed. */
  get firstConnectDone(): boolean { return this.firstDone; }
  get startedAt(): number { return this.started; }

  private newHandle(): Kafka.Producer {
    const producer = newProducer(this.rdkafka);
    producer.on('delivery-report', this.report);
    // librdkafka's own log (its `debug` setting) at debug level.
    producer.on('event.log', (ev: { severity: number; fac: string; message: string }) => {
      this.log.debug({ fac: ev.fac, severity: ev.severity }, `librdkafka: ${ev.message}`);
    });
    // node-rdkafka hands librdkafka's error events (and delivery errors) over
    // as text only (code -1), so they are told apart by their text.
    producer.on('event.error', (err) => {
      if (/all broker connections are down/i.test(err.message)) this.down();
      this.lastErr = { at: Date.now(), what: err.message };
      this.limited(`error ${err.code}`, { code: err.code, err: err.message }, 'librdkafka error');
    });
    producer.on('event.stats', (ev: { message: string }) => {
      try {
        const stats = JSON.parse(ev.message) as { brokers?: Record<string, BrokerStats> };
        const brokers = Object.values(stats.brokers ?? {});
        if (brokers.some((b) => b.state === 'UP' && (b.nodeid ?? -1) >= 0)) this.up = true;
        else this.down();
        // Requests wait and no broker sent a byte for a while: a paused or
        // stuck broker keeps its connection up, but it does not keep calling
        // a topic unknown meanwhile; as after an outage, the window starts again.
        if (silent(brokers)) this.unknownTopics.outage();
        else if (this.up) this.unknownTopics.heard(performance.now());
      } catch { /* a stats blob we cannot read changes nothing */ }
    });
    return producer;
  }

  private down(): void {
    this.up = false;
    this.unknownTopics.outage();
  }

  /** Does not wait for a broker: an absent broker must not stop start-up. */
  start(): void {
    this.started = Date.now();
    this.connect();
  }

  /**
   * node-rdkafka's connect() fetches metadata and fails when no broker
   * answers; produce() refuses until it succeeded. So connect is retried in
   * the background while Lines wait, each time with a new Producer: one
   * whose connect() failed never delivers reports after a later successful
   * connect (node-rdkafka 3.6). Once connected, broker outages are
   * librdkafka's business: it reconnects by itself.
   */
  private connect(): void {
    this.connectTimer = null;
    if (this.stopped) return;
    this.log.debug('connect attempt');
    this.handle.connect({ timeout: CONNECT_TIMEOUT_MS, allTopics: false }, (err) => {
      this.firstDone = true;
      if (err) {
        this.onConnectAttempt();
        this.log.debug({ err: err.message }, 'connect attempt failed');
        this.lastErr = { at: Date.now(), what: `connect: ${err.message}` };
        this.limited('connect', { err: err.message }, 'kafka: no broker answers yet, retrying');
        if (!this.stopped) {
          this.handle = this.newHandle();
          this.connectTimer = setTimeout(() => this.connect(), CONNECT_RETRY_MS);
        }
        return;
      }
      if (this.stopped) {
        void disconnectProducer(this.handle, 0);
        return;
      }
      this.connectedNow = true;
      this.up = true;
      this.handle.setPollInterval(POLL_MS); // delivery reports reach JS only through poll()
      this.log.info('kafka producer connected');
      this.onConnectAttempt();
    });
  }

  /** No more connect attempts; one under way disconnects when it completes. */
  stopConnecting(): void {
    this.stopped = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
  }

  /** Throws what librdkafka says (queue full, not connected, too large...). */
  produce(topic: string, payload: Buffer, key: string | null, time: number, opaque: object, headers: Kafka.MessageHeader[]): void {
    this.handle.produce(topic, null, payload, key, time, opaque, headers);
    this.held++;
  }

  private readonly report = (err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport): void => {
    if (this.settled) return;
    this.held--;
    this.lastReportAt = Date.now();
    if (!err && (report as { opaque?: unknown } | undefined)?.opaque !== undefined) {
      this.up = true;
      this.unknownTopics.exists(report.topic);
    }
    this.onReport(err, report);
  };

  /** Messages in librdkafka and no delivery report for STALL_MS: the broker takes them and never answers. */
  stalled(now: number): boolean {
    return this.held > 0 && now - this.lastReportAt > STALL_MS;
  }

  stallReason(now: number): string {
    return `${this.held} messages in librdkafka without a delivery report for ${Math.round((now - this.lastReportAt) / 1000)} s`;
  }

  /**
   * Whether a failed message to `topic` may succeed later. A topic reported
   * unknown while no broker answers is not known to be gone. Reported
   * unknown by a broker that answers, it is final only once brokers kept
   * saying so for a while (unknown-topics.ts): a topic auto-created just as
   * the broker died or stopped is reported unknown while it is made. So a
   * deleted topic's Lines are dropped and hold up the spool's drain for the
   * other topics only that while.
   */
  mayRetry(err: Kafka.LibrdKafkaError, topic: string | undefined): boolean {
    if (retriable(err)) return true;
    if (!unknownTopic(err)) return false;
    // Elapsed time, not the wall clock: a clock stepped back must not keep a
    // deleted topic's Lines (and the spool's drain behind them) for that long.
    return !this.connectedNow || !this.up || this.unknownTopics.mayAppear(topic, performance.now());
  }

  /**
   * A refusal that is librdkafka's fatal error (idempotence broken): this
   * producer refuses everything from now on. Not recovered from here (a new
   * producer would have to take over the old one's queue); it is made as
   * loud as it gets instead.
   */
  noteRefusal(err: unknown): void {
    if (code(err) !== ERR.ERR__FATAL || this.fatalErr !== null) return;
    this.fatalErr = (err as Error).message;
    this.log.fatal({ err: this.fatalErr }, 'kafka producer hit a fatal error; every Line is dropped until scratchd restarts');
  }

  /** Resolves when librdkafka delivered what it holds or `ms` passed. */
  flush(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.handle.flush(ms, () => resolve()));
  }

  /**
   * From here on reports are ignored (a message delivered later stays
   * counted as the caller counts it now); returns how many had none.
   */
  settle(): number {
    this.settled = true;
    const left = this.held;
    this.held = 0;
    return left;
  }

  /** No flush: whatever is left was settled before. */
  async disconnect(): Promise<void> {
    if (!this.connectedNow) return;
    await disconnectProducer(this.handle, 0);
    this.connectedNow = false;
  }
}
