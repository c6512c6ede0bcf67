/**
 * Lines produced on the normal path and not yet reported on, per topic, in
 * produce order. librdkafka is given copies, and node-rdkafka's delivery
 * reports name a message only by topic, partition, timestamp and size (an
 * opaque or the value in the report would cost per-Line work on the serving
 * thread); these references are what lets the backend re-spool a Line that
 * comes back failed, and write what librdkafka still holds at shutdown into
 * the spool.
 *
 * A report is matched to the oldest Line of its topic with the same
 * timestamp and size. Reports of one partition come in produce order, so
 * that is the head unless the topic has several partitions; then two Lines
 * of one topic, millisecond and size on different partitions can be taken
 * for each other (README: Kafka outages).
 */
import type { Line } from '../line.js';

/** How far past the head a report is looked for before taking the head. */
const SCAN = 256;

class Fifo {
  items: (Line | null)[] = [];
  head = 0;
}

export class InFlight {
  private readonly byTopic = new Map<string, Fifo>();
  size = 0;

  add(line: Line): void {
    let f = this.byTopic.get(line.flavor.topic);
    if (f === undefined) this.byTopic.set(line.flavor.topic, (f = new Fifo()));
    f.items.push(line);
    this.size++;
  }

  /** The Line a report is about, removed; undefined when none is known (e.g. after `takeAll`). */
  take(topic: string, time: number | undefined, size: number | undefined): Line | undefined {
    const f = this.byTopic.get(topic);
    if (f === undefined) return undefined;
    const end = Math.min(f.items.length, f.head + SCAN);
    let at = -1;
    for (let i = f.head; i < end; i++) {
      const l = f.items[i];
      if (l !== null && l !== undefined && (time === undefined || l.time === time) && (size === undefined || l.json.length === size)) {
        at = i;
        break;
      }
    }
    if (at < 0) {
      while (f.head < f.items.length && f.items[f.head] === null) f.head++;
      if (f.head >= f.items.length) return undefined;
      at = f.head;
    }
    const line = f.items[at]!;
    f.items[at] = null;
    this.size--;
    while (f.head < f.items.length && f.items[f.head] === null) f.head++;
    if (f.head === f.items.length) {
      f.items = [];
      f.head = 0;
    } else if (f.head > 4096 && f.head * 2 > f.items.length) {
      f.items = f.items.slice(f.head);
      f.head = 0;
    }
    return line;
  }

  /** Every Line still waiting, oldest first per topic; forgets them. */
  takeAll(): Line[] {
    const out: Line[] = [];
    for (const f of this.byTopic.values()) for (let i = f.head; i < f.items.length; i++) if (f.items[i] !== null) out.push(f.items[i]!);
    this.byTopic.clear();
    this.size = 0;
    return out;
  }
}
