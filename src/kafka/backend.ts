/**
 * Kafka backend: Lines → one node-rdkafka Producer per process.
 *
 * The request path only touches `send`, which puts the Line into this
 * backend's own bounded Channel. A pump loop moves batches from the channel
 * either into librdkafka (producer.ts), whose threads do batching,
 * compression, I/O, retries and reconnects, or to the spool's tail: the
 * spill decision (spill.ts) says which. Delivery reports decide `persisted`
 * / `failed` (outcomes.ts).
 *
 * Where Lines wait, and what bounds them, during a broker outage, without
 * the spool (`spool` absent or off; NULL_SPOOL stands in, null-spool.ts):
 *   1. librdkafka's queue (queue.buffering.max.messages / .kbytes); nothing
 *      there expires by time (message.timeout.ms=0), so only space bounds it;
 *   2. once that is full, produce() says QUEUE_FULL and the pump backs off and
 *      retries (`retried`), so Lines pile up in the channel (queueCapacity);
 *   3. once the channel is full too, `send` drops (`dropped`).
 * With the spool (src/kafka/spool/), new Lines go to the spool's tail while
 * the backend spills (spill.ts says when; also when this queue is full, so
 * a Kafka path slower than the requests costs disk, not Lines), and the drainer (drainer.ts)
 * produces from its head and acknowledges on delivery reports; every
 * message carries what it is as its opaque (inflight.ts), so each report is
 * matched to its own Line or record. Only maxBytes and minFreeBytes of disk
 * bound an outage then.
 * Nothing is lost without being counted: a delivery error, a Line librdkafka
 * refuses outright, a Line the spool cannot take, and whatever close() could
 * not flush (or spool) in time are all counted as dropped.
 */
import type Kafka from 'node-rdkafka';
import type { Backend, BackendCounters, BackendHealth, LossListener } from '../backend.js';
import { Channel } from '../channel.js';
import type { KafkaConfig } from '../config.js';
import { instanceOf } from '../instance.js';
import type { Line } from '../line.js';
import type { Flavor } from '../flavor.js';
import { rateLimited, type Logger } from '../log.js';
import { Drainer } from './drainer.js';
import { code, codeName, ERR } from './errors.js';
import { InDoubt } from './in-doubt.js';
import { kafkaHealth } from './health.js';
import { InFlight, isSpooled, type Sent } from './inflight.js';
import type { DeliveryLatency } from './latency.js';
import { Messages } from './message.js';
import { NULL_SPOOL, UNTRACKED, type SpoolPort } from './null-spool.js';
import { Outcomes } from './outcomes.js';
import { Producer } from './producer.js';
import { consumerSettings } from './settings.js';
import { PRODUCE, Spill, SPOOL } from './spill.js';
import { Spool } from './spool/spool.js';
import { UNWRITTEN_MAX_BYTES } from './spool/writer.js';
import type { KafkaStatsSource, SpoolSnapshot } from './stats.js';

/** `backends.kafka` from the config; `rdkafka` is laid over RDKAFKA_DEFAULTS. */
export type { KafkaConfig };

const QUEUE_FULL_BACKOFF_MS = 50;
/** Produce this many Lines, then let the event loop serve requests. */
const PRODUCE_SLICE = 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class KafkaBackend implements Backend, KafkaStatsSource {
  readonly name = 'kafka';
  readonly counters: BackendCounters;
  readonly deliveryLatency: DeliveryLatency;
  private readonly outcomes: Outcomes;
  private readonly limited: ReturnType<typeof rateLimited>;
  private readonly channel: Channel<Line>;
  private readonly producer: Producer;
  private readonly messages: Messages;
  private readonly spill: Spill;
  /** NULL_SPOOL when off, or when the spool cannot be opened. */
  private spool: SpoolPort = NULL_SPOOL;
  private spoolOpened: Promise<void> = Promise.resolve();
  private readonly drainer: Drainer;
  /** What a shutdown leaves without a delivery report, and its read-back at the next start. */
  private readonly doubt: InDoubt;
  /** Normal-path Lines librdkafka holds: re-spooled if they come back failed or are left at shutdown (UNTRACKED without a spool). */
  private readonly normal: Pick<InFlight, 'add' | 'delete' | 'takeAll'>;
  /** The batch the pump is producing from, and how far it got. */
  private batch: Line[] = [];
  private batchAt = 0;
  /** produce() said QUEUE_FULL last. */
  private queueFull = false;
  private closing = false;
  /** close()'s deadline passed: drop what is still waiting. */
  private givingUp = false;
  private wakePump: (() => void) | null = null;
  private pumping: Promise<void> = Promise.resolve();

  constructor(private readonly config: KafkaConfig, private readonly log: Logger, flavors: readonly Flavor[] = []) {
    this.limited = rateLimited(log);
    this.channel = new Channel<Line>(config.queueCapacity, config.queueBytes, (line) => line.json.length);
    this.messages = new Messages(instanceOf(config), config, flavors);
    this.producer = new Producer(config.rdkafka, log, this.limited, this.onReport, () => this.wakePump?.());
    this.outcomes = new Outcomes(this.producer, this.limited);
    this.counters = this.outcomes.counters;
    this.deliveryLatency = this.outcomes.deliveryLatency;
    const spoolOn = config.spool?.enabled === true;
    if (spoolOn) {
      this.spool = new Spool(config.spool!, log.child({ component: 'kafka-spool' }), this.outcomes.spoolDropped,
        Math.max(UNWRITTEN_MAX_BYTES, config.queueBytes));
    }
    this.normal = spoolOn ? new InFlight() : UNTRACKED;
    this.spill = new Spill(spoolOn, this.producer, log, config.rdkafka);
    this.doubt = new InDoubt(spoolOn ? config.spool!.dir : null, instanceOf(config), consumerSettings(config.rdkafka), log);
    this.drainer = new Drainer(this.spool, this.producer, this.spill, this.messages, this.outcomes, this.limited,
      config.spool?.fsyncMs ?? 0, this.doubt);
  }

  /** Called for every Line given up on; set by main before `start`. */
  get onLoss(): LossListener { return this.outcomes.onLoss; }
  set onLoss(listener: LossListener) { this.outcomes.onLoss = listener; }

  /** Does not wait for a broker: an absent broker must not stop start-up. */
  async start(): Promise<void> {
    this.producer.start();
    // In the background: serving starts at once; Lines wait in the channel meanwhile.
    const spool = this.spool;
    this.spoolOpened = spool.open().then(async () => {
      if (!spool.isEmpty()) this.spill.begin('the spool holds Lines from before', 'info');
      await this.doubt.load();
    }, (err: unknown) => {
      this.log.error({ err: (err as Error).message, dir: this.config.spool?.dir }, 'kafka spool cannot be opened; running without it');
      this.spill.disable();
      this.spool = NULL_SPOOL;
    });
    this.drainer.start(this.spoolOpened); // without a spool it ends at once
    this.pumping = this.pump().catch((err: unknown) => {
      this.log.error({ err }, 'kafka pump stopped');
    });
  }

  spoolSnapshot(): SpoolSnapshot | null {
    return this.spill.enabled ? this.drainer.snapshot() : null;
  }

  send(line: Line): boolean {
    if (this.channel.send(line)) return true;
    // Memory or disk, as nsqd's put(): with a spool, a full queue spills
    // instead of dropping, and what waits before this Line goes first.
    if (!this.closing && this.spool.ready && this.spill.begin('the Kafka queue is full')) {
      this.spillWaiting();
      this.toSpool(line);
      return true;
    }
    this.counters.dropped++;
    this.onLoss(this.name, line.flavor.name, line.time, this.closing ? 'drain_timeout' : 'queue_full');
    this.limited('dropped', { queued: this.queued() }, this.closing ? 'kafka backend closing, Line dropped' : 'kafka queue full, Line dropped');
    return false;
  }

  /**
   * The Lines the pump has not produced yet (its batch's rest, then the
   * queue) to the spool's tail, in order: the pump finds its batch done.
   */
  private spillWaiting(): void {
    const batch = this.batch;
    while (this.batchAt < batch.length) this.toSpool(batch[this.batchAt++]!, true);
    for (const line of this.channel.drainAll()) this.toSpool(line, true);
  }

  /** What the spool cannot take it reports to outcomes.spoolDropped. `held`: from the queue (SpoolWriter.append). */
  private toSpool(line: Line, held = false): void {
    this.messages.seen(line.flavor);
    this.spool.append(line.flavor.name, line.time, line.json, held);
  }

  queued(): number {
    return this.channel.length + (this.batch.length - this.batchAt) + this.producer.inFlight;
  }

  health(): BackendHealth {
    return kafkaHealth(Date.now(), {
      closing: this.closing,
      producer: this.producer,
      spool: this.spool,
      spilling: this.spill.spilling,
      spoolInFlight: this.drainer.inFlight,
      lastSpoolDrop: this.outcomes.lastSpoolDrop,
      lastFailure: this.outcomes.lastFailure,
      queueFull: this.queueFull,
      waiting: this.channel.length,
      capacity: this.channel.capacity,
    });
  }

  /** Nothing is held open per file; log rotation does not concern Kafka. */
  reopen(): void {}

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
      if (!this.spool.ready) await this.spoolOpened;
      this.batch = batch;
      this.batchAt = 0;
      await this.put(batch);
      const left = batch.length - this.batchAt;
      if (left > 0) {
        for (let i = this.batchAt; i < batch.length; i++) this.outcomes.timedOut(batch[i]!.flavor.name, batch[i]!.time);
        this.log.error({ dropped: left }, 'kafka: Lines still waiting at the flush timeout, dropped');
      }
      this.batch = [];
      this.batchAt = 0;
    }
  }

  /** Each Line of the batch to librdkafka or to the spool, until done or close() gives up. */
  private async put(batch: Line[]): Promise<void> {
    let slice = 0;
    while (this.batchAt < batch.length && !this.givingUp) {
      const line = batch[this.batchAt]!;
      this.messages.seen(line.flavor);
      const route = this.spill.route();
      if (route === SPOOL) {
        this.spool.append(line.flavor.name, line.time, line.json);
        this.batchAt++;
        continue;
      }
      if (route !== PRODUCE) {
        await this.pause(route); // connect wakes it
        continue;
      }
      try {
        // The Line is its own opaque: its report names it exactly (inflight.ts).
        this.producer.produce(line.flavor.topic, line.json, this.messages.keyOf(line.json), line.time, line, this.messages.headersOf(line.flavor.name));
        this.normal.add(line);
        this.batchAt++;
        this.queueFull = false;
        if (++slice === PRODUCE_SLICE) {
          slice = 0;
          await new Promise((r) => setImmediate(r));
        }
      } catch (err) {
        if (code(err) === ERR.ERR__QUEUE_FULL) {
          this.queueFull = true;
          if (this.spill.begin('librdkafka queue full')) continue; // this Line goes to the spool
          // librdkafka holds as much as it may; wait for deliveries to make room.
          this.counters.retried++;
          await this.pause(QUEUE_FULL_BACKOFF_MS);
          continue;
        }
        if (this.producer.mayRetry(err as Kafka.LibrdKafkaError, line.flavor.topic) && this.spill.begin(`produce: ${(err as Error).message}`)) {
          continue; // this Line goes to the spool
        }
        this.outcomes.refused(err, line.flavor.name, line.time, line.flavor.topic);
        this.batchAt++;
      }
    }
  }

  private readonly onReport = (err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport): void => {
    const sent = (report as { opaque?: Sent } | undefined)?.opaque;
    if (sent === undefined) return; // every message is produced with one
    if (!err) this.doubt.noteAcked(report.topic, report.partition, report.offset);
    if (isSpooled(sent)) {
      this.drainer.report(err, report, sent);
      return;
    }
    const waiting = this.normal.delete(sent);
    if (err) {
      this.counters.failed++;
      if (waiting && this.producer.mayRetry(err, report?.topic) && this.spill.begin(`delivery failed: ${err.message}`)) {
        // Back to the spool's tail (docs/kafka.md, Kafka outages, says where that is in the topic's order).
        this.counters.retried++;
        this.spool.append(sent.flavor.name, sent.time, sent.json);
        this.limited(`re-spool ${codeName(err)}`, { code: codeName(err), err: err.message, topic: report?.topic }, 'kafka delivery failed, Line re-spooled');
        return;
      }
      // Final: librdkafka has retried what it could. Counted as both a failure and a lost Line.
      this.outcomes.lost(err, report?.topic, sent.flavor.name, sent.time);
      return;
    }
    this.outcomes.delivered(report);
  };

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const deadline = Date.now() + this.config.flushTimeoutMs;
    this.channel.close();
    const giveUp = setTimeout(() => {
      this.givingUp = true;
      this.producer.stopConnecting();
      this.wakePump?.();
    }, this.config.flushTimeoutMs);
    await this.pumping; // everything queued is in librdkafka or the spool now, or counted as dropped
    clearTimeout(giveUp);
    this.givingUp = true;
    this.producer.stopConnecting(); // a connect attempt still under way disconnects when it completes
    if (this.spill.enabled) await this.closeWithSpool(deadline);
    else await this.closeWithoutSpool(deadline);
  }

  private async closeWithoutSpool(deadline: number): Promise<void> {
    const p = this.producer;
    if (p.connected) {
      await p.flush(Math.max(0, deadline - Date.now()));
      // flush() returns when librdkafka is done; the reports reach JS a moment later.
      while (p.inFlight > 0 && Date.now() < deadline + 200) await sleep(10);
    }
    // From here on reports are ignored: a Line delivered after the deadline
    // stays counted as dropped (an overcount of loss, never an undercount).
    const left = p.settle();
    if (left > 0) {
      this.counters.dropped += left;
      this.log.error({ dropped: left, flushTimeoutMs: this.config.flushTimeoutMs },
        'kafka: Lines not delivered within the flush timeout, dropped');
    }
    await p.disconnect();
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
    const p = this.producer;
    await this.spoolOpened;
    const spool = this.spool;
    // Drain the spool's head too for the first half of the flush timeout...
    const drainUntil = deadline - this.config.flushTimeoutMs / 2;
    while (Date.now() < drainUntil && p.connected && p.brokerUp && (p.inFlight > 0 || (this.spill.spilling && !spool.isEmpty()))) {
      await sleep(20);
    }
    await this.drainer.stop();
    // ...then produce nothing more and wait for the reports of what is in
    // flight: a spooled record whose report came is not sent again at the
    // next start. Those still without one at the deadline stay in the spool.
    while (Date.now() < deadline && p.connected && p.brokerUp && !p.stalled(Date.now()) && p.inFlight > 0) await sleep(10);
    p.settle();
    const unreported = this.drainer.settle();
    if (unreported.length > 0) {
      this.log.warn({ records: unreported.length }, 'kafka: spooled records without a delivery report at shutdown stay in the spool; the next start sends those the topic lacks');
    }
    const left = this.normal.takeAll();
    const kept: Line[] = [];
    if (this.spill.enabled && left.length > 0) {
      for (const line of left) if (spool.append(line.flavor.name, line.time, line.json, true)) kept.push(line);
      this.log.warn({ lines: left.length }, 'kafka: Lines librdkafka still held at shutdown written to the spool');
    } else if (left.length > 0) {
      for (const line of left) this.outcomes.timedOut(line.flavor.name, line.time);
      this.log.error({ dropped: left.length }, 'kafka: Lines not delivered within the flush timeout, dropped');
    }
    await spool.close();
    // Sent, but whether Kafka has them is unknown: the next start reads them
    // back first. Delivered above the watermark ledger.json keeps: the next
    // start reads them again from the spool and skips them.
    if (this.spill.enabled) {
      await this.doubt.save([...unreported, ...kept.map((l) => ({ topic: l.flavor.topic, time: l.time, payload: l.json }))],
        this.drainer.deliveredAhead());
    }
    await p.disconnect();
    this.log.info({ ...this.counters, spool: this.spoolSnapshot() }, 'kafka backend closed');
  }
}
