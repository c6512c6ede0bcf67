/**
 * What became of each Line the Kafka backend took: the counters, the loss
 * listener, the delivery latency, and the last failures health looks at.
 * Nothing is lost without being counted here.
 */
import type Kafka from 'node-rdkafka';
import { ignoreLoss, newCounters, type BackendCounters, type LossListener } from '../backend.js';
import { code, codeName } from './errors.js';
import { DeliveryLatency } from './latency.js';
import type { Producer } from './producer.js';
import type { SpoolDropReason } from './spool/drop-reasons.js';

const NAME = 'kafka';
type Limited = (kind: string, fields: object, msg: string) => void;

export class Outcomes {
  readonly counters: BackendCounters = newCounters();
  readonly deliveryLatency = new DeliveryLatency();
  onLoss: LossListener = ignoreLoss;
  /** The last Line given up on (refused or failed delivery): health is degraded for a while. */
  lastFailure: { at: number; what: string } | null = null;
  lastSpoolDrop: { at: number; reason: SpoolDropReason } | null = null;

  constructor(private readonly producer: Producer, private readonly limited: Limited) {}

  delivered(report: Kafka.DeliveryReport): void {
    this.counters.persisted++;
    if (typeof report.timestamp === 'number') this.deliveryLatency.observe((Date.now() - report.timestamp) / 1000);
  }

  /** A delivery failed for good: counted and reported with the Line's own flavor and arrival time. */
  lost(err: Kafka.LibrdKafkaError, topic: string | undefined, flavor: string, time: number): void {
    this.counters.dropped++;
    this.lastFailure = { at: Date.now(), what: `delivery failed: ${err.message}` };
    this.onLoss(NAME, flavor, time, 'delivery_failed');
    this.limited(`delivery ${codeName(err)}`, { code: codeName(err), err: err.message, topic }, 'kafka delivery failed, Line dropped');
  }

  /** librdkafka refused a message outright (e.g. larger than message.max.bytes): it never will be accepted. */
  refused(err: unknown, flavor: string, time: number, topic: string): void {
    this.producer.noteRefusal(err);
    this.lastFailure = { at: Date.now(), what: `refused: ${(err as Error).message}` };
    this.counters.failed++;
    this.counters.dropped++;
    this.onLoss(NAME, flavor, time, 'refused');
    this.limited(`produce ${code(err)}`, { code: code(err), err: (err as Error).message, topic },
      'kafka refused a Line, dropped');
  }

  /** The spool's onDrop: a Line it could not take. */
  readonly spoolDropped = (reason: SpoolDropReason, flavor: string, time: number): void => {
    this.counters.dropped++;
    this.lastSpoolDrop = { at: Date.now(), reason };
    this.onLoss(NAME, flavor, time, reason);
    this.limited(`spool ${reason}`, { reason }, 'kafka spool cannot take a Line, dropped');
  };

  /** Lines still waiting when the flush timeout passed. */
  timedOut(flavor: string, time: number): void {
    this.counters.dropped++;
    this.onLoss(NAME, flavor, time, 'drain_timeout');
  }
}
