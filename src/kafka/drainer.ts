/**
 * The drainer: while the backend spills and a broker is up, it produces
 * from the spool's head and acknowledges each record on its delivery
 * report, at most DRAIN_WINDOW unreported and never past librdkafka's
 * high-water mark, so librdkafka's queue never fills; it ends the spill
 * when the spool is empty. Every record carries its SpooledRef as its
 * opaque (inflight.ts), so each report is matched to its own record.
 */
import { performance } from 'node:perf_hooks';
import type Kafka from 'node-rdkafka';
import { DrainPace } from './drain-pace.js';
import { DeliveredAhead } from './delivered-ahead.js';
import { fingerprint, type Printable } from './doubt.js';
import { code, codeName, ERR, unknownTopic } from './errors.js';
import { FOUND, type InDoubt } from './in-doubt.js';
import type { SpooledRef } from './inflight.js';
import type { Messages } from './message.js';
import type { SpoolPort } from './null-spool.js';
import type { Outcomes } from './outcomes.js';
import { ProcessLoad } from './process-load.js';
import type { Producer } from './producer.js';
import type { Spill } from './spill.js';
import type { SpoolSnapshot } from './stats.js';

/** The drainer's pause after an error, doubling up to the most. */
const DRAIN_RETRY_MIN_MS = 100;
const DRAIN_RETRY_MAX_MS = 10_000;
/** Spooled records produced and not yet reported on, at most. */
const DRAIN_WINDOW = 10_000;
/** Records read from the spool per step, then the event loop serves requests. */
const DRAIN_SLICE = 512;

type Limited = (kind: string, fields: object, msg: string) => void;
type Records = Awaited<ReturnType<SpoolPort['read']>>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Drainer {
  /** Spooled records produced, no report yet. */
  private readonly unreported = new Set<SpooledRef>();
  /** A spooled record failed: read again from the watermark once the others reported. */
  private rewindPending = false;
  private stopped = false;
  /** Acknowledged above the watermark: the next start skips them (delivered-ahead.ts). */
  private readonly ahead = new DeliveredAhead<Printable>();
  /** settle() was called: what is reported from now on is in doubt already. */
  private settled = false;
  private running: Promise<void> = Promise.resolve();
  /** Paces the drainer by what the request path leaves of the event loop (drain-pace.ts). */
  private readonly pace = new DrainPace();
  private readonly load = new ProcessLoad();
  /**
   * Spooled records given up on (refused, failed for good): the spool
   * counts them acknowledged, but they were not drained into Kafka.
   */
  private givenUp = 0;
  /** Errors of the drainer (it retries after each). */
  private errors = 0;
  /** (time, drained) samples for the drain rate. */
  private rateFrom = { at: Date.now(), drained: 0 };
  private rate = 0;

  constructor(
    private readonly spool: SpoolPort,
    private readonly producer: Producer,
    private readonly spill: Spill,
    private readonly messages: Messages,
    private readonly outcomes: Outcomes,
    private readonly limited: Limited,
    private readonly fsyncMs: number,
    private readonly doubt: InDoubt,
  ) {}

  /** Spooled records produced, no report yet. */
  get inFlight(): number {
    return this.unreported.size;
  }

  /** Shutdown: reports are ignored from now on; returns those that had none (they stay in the spool). */
  settle(): SpooledRef[] {
    this.settled = true;
    const left = [...this.unreported];
    this.unreported.clear();
    return left;
  }

  /**
   * Once the spool is closed: the fingerprints of the records delivered
   * above the watermark. Above this run's own, not the one ledger.json is
   * known to hold: a write that failed after its rename (the directory's
   * fsync) leaves the newer one on disk, and a print of a record below it
   * is never met by its record at the next start, but by a Line alike to it
   * (topic, time, bytes) not delivered, which would be skipped: lost. No
   * ledger.json is ahead of this watermark; one behind it has the next
   * start send those between again (at least once).
   */
  deliveredAhead(): string[] {
    return this.ahead.above(this.spool.acked).map((r) => fingerprint(r.topic, r.time, r.payload));
  }

  /** Runs until stop(), once `opened` resolved with a spool. */
  start(opened: Promise<void>): void {
    this.running = this.retrying(opened);
  }

  /** Produce nothing more; resolves when the loop has ended. */
  stop(): Promise<void> {
    this.stopped = true;
    this.doubt.stop();
    return this.running;
  }

  /** The drainer, started again after any error with a growing pause: never silent, never for good. */
  private async retrying(opened: Promise<void>): Promise<void> {
    let backoff = DRAIN_RETRY_MIN_MS;
    while (!this.stopped) {
      const began = Date.now();
      try {
        await opened;
        // What the last shutdown left in doubt is read back before anything is sent.
        await this.doubt.confirm(() => this.stopped, () => this.producer.connected && this.producer.brokerUp);
        await this.drain();
        return;
      } catch (err) {
        this.errors++;
        if (Date.now() - began > DRAIN_RETRY_MAX_MS) backoff = DRAIN_RETRY_MIN_MS; // it had worked for a while
        this.limited('drain', { err: (err as Error).message, retryInMs: backoff, errors: this.errors },
          'kafka spool drainer failed; retrying');
        // Where it was reading is unknown now: read again from the watermark.
        this.rewindPending = true;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, DRAIN_RETRY_MAX_MS);
      }
    }
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      if (!this.spill.enabled) return; // no spool, or it could not be opened
      const spool = this.spool;
      if (!this.spill.spilling) {
        await sleep(50);
        continue;
      }
      if (this.rewindPending) {
        if (this.unreported.size > 0) {
          await sleep(20);
          continue;
        }
        spool.rewind();
        this.rewindPending = false;
      }
      if (spool.isEmpty() && this.unreported.size === 0) {
        this.doubt.spoolEmpty();
        this.spill.end({ drained: spool.drained }, 'kafka: the spool is empty, Lines go to librdkafka again');
        continue;
      }
      const p = this.producer;
      const room = Math.min(DRAIN_WINDOW - this.unreported.size, this.spill.highWater - p.inFlight, DRAIN_SLICE);
      // With nothing to send, librdkafka (sparse connections) may not connect
      // to the partition leader again for minutes after an outage, so no
      // report says the broker is back: one record at a time probes for it,
      // and its delivery report sets brokerUp.
      const up = p.brokerUp && !p.stalled(Date.now());
      const probe = p.connected && !up && p.fatal === null && this.unreported.size === 0;
      if (!probe && (!p.connected || !up || p.fatal !== null || room <= 0)) {
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
        await sleep(Math.min(50, this.fsyncMs));
        continue;
      }
      const sliceStart = performance.now();
      await this.produce(spool, records);
      if (handOver && !this.rewindPending) {
        this.doubt.spoolEmpty();
        this.spill.end({ drained: spool.drained, inFlight: this.unreported.size }, 'kafka: the spool caught up, Lines go to librdkafka again');
      }
      // Rest so that the whole loop stays under the pace's ceiling: the
      // drainer gets what the request path leaves (drain-pace.ts).
      const now = performance.now();
      const utilization = this.pace.due(now) ? this.load.sinceLast(now) : null;
      await sleep(Math.max(1, this.pace.step(now, utilization, now - sliceStart)));
    }
  }

  /** Each record to librdkafka; on a retriable refusal, the rest goes out again after a rewind. */
  private async produce(spool: SpoolPort, records: Records): Promise<void> {
    const m = this.messages;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const topic = m.topicOf(r.flavor);
      const skipped = this.doubt.skips(topic, r.time, r.payload);
      if (skipped !== null) {
        // In the topic already: its report lost with the broker at the last
        // shutdown (counted now), or delivered before it (counted then).
        spool.ack(r.seq);
        this.acked(r.seq, { topic, time: r.time, payload: r.payload });
        if (skipped === FOUND) this.outcomes.counters.persisted++;
        continue;
      }
      try {
        const ref: SpooledRef = { seq: r.seq, flavor: r.flavor, time: r.time, topic, payload: r.payload };
        this.producer.produce(topic, r.payload, m.keyOf(r.payload), r.time, ref, m.headersOf(r.flavor));
        this.unreported.add(ref);
      } catch (err) {
        if (code(err) === ERR.ERR__QUEUE_FULL || code(err) === ERR.ERR__STATE || this.producer.mayRetry(err as Kafka.LibrdKafkaError, topic)) {
          this.rewindPending = true;
          if (unknownTopic(err)) await sleep(100); // until a broker says whether it exists
          return;
        }
        this.outcomes.refused(err, r.flavor, r.time, topic);
        this.givenUp++;
        spool.ack(r.seq); // given up on: the watermark may pass it
        this.acked(r.seq, null);
      }
    }
  }

  /** A report on a record produced from the spool. */
  report(err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport, sent: SpooledRef): void {
    this.unreported.delete(sent);
    const spool = this.spool;
    if (!err) {
      spool.ack(sent.seq);
      this.acked(sent.seq, sent);
      this.outcomes.delivered(report);
      return;
    }
    this.outcomes.counters.failed++;
    if (this.producer.mayRetry(err, sent.topic)) {
      // Still in the spool: read again from the watermark once the others reported.
      this.outcomes.counters.retried++;
      this.rewindPending = true;
      this.spill.begin(`delivery from the spool failed: ${err.message}`);
      this.limited(`spool delivery ${codeName(err)}`, { code: codeName(err), err: err.message, topic: report?.topic }, 'kafka delivery from the spool failed, will retry');
      return;
    }
    this.outcomes.lost(err, report?.topic, sent.flavor, sent.time);
    this.givenUp++;
    spool.ack(sent.seq); // given up on: the watermark may pass it
    this.acked(sent.seq, null);
  }

  /**
   * Record `seq` acknowledged in the spool just now: with `record`, Kafka
   * has it, noted when the watermark stays below it (its fingerprint made
   * at the stop); null, given up on. Either may move the watermark over the
   * notes: a missing topic's Lines given up on after its window are the
   * last acknowledgements of a drain, and the notes behind them would stay
   * (and fill MAX_NOTES) until the next one.
   * After settle() the record is in doubt (its print read back at the next
   * start), and nothing noted goes: deliveredAhead() keeps to the watermark
   * at the stop.
   */
  private acked(seq: number, record: Printable | null): void {
    if (this.settled) return;
    const watermark = this.spool.acked;
    if (seq > watermark) {
      if (record !== null) this.ahead.note(seq, record);
    } else if (this.ahead.size > 0) this.ahead.passed(watermark);
  }

  /** The spool's numbers for /stats and /metrics. */
  snapshot(): SpoolSnapshot {
    const s = this.spool;
    const now = Date.now();
    const drained = s.drained - this.givenUp;
    if (now - this.rateFrom.at >= 5000) {
      this.rate = ((drained - this.rateFrom.drained) * 1000) / (now - this.rateFrom.at);
      this.rateFrom = { at: now, drained };
    }
    const oldest = s.oldest();
    return {
      ready: s.ready ? 1 : 0,
      spilling: this.spill.spilling ? 1 : 0,
      bytes: s.diskBytes,
      records: s.records,
      segments: s.segmentCount,
      oldest_age_seconds: oldest === null ? 0 : Math.max(0, (now - oldest) / 1000),
      drain_rate_per_second: this.rate,
      drain_duty: this.pace.duty,
      spilled_total: s.spilled,
      drained_total: drained,
      drain_errors_total: this.errors,
      dropped_total: { ...s.drops },
      quarantined_total: s.quarantined,
    };
  }
}
