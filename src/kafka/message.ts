/**
 * What a Kafka message carries besides the Line's JSON: its topic, its key
 * and its headers, for the normal path and for records drained from the
 * spool alike.
 */
import type Kafka from 'node-rdkafka';
import type { Flavor } from '../flavor.js';
import { messageKey } from './key.js';

export class Messages {
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
   * current by the normal path, so a flavor added or re-pointed by a reload
   * has its spooled Lines sent to its topic as configured now.
   */
  private readonly byName = new Map<string, Flavor>();

  constructor(private readonly instance: string, private readonly config: { readonly key: string | null }, flavors: readonly Flavor[]) {
    for (const f of flavors) this.byName.set(f.name, f);
  }

  /** A Line of this flavor came: its topic is the one spooled records of that name go to. */
  seen(flavor: Flavor): void {
    if (this.byName.get(flavor.name) !== flavor) this.byName.set(flavor.name, flavor);
  }

  /** The topic of a spooled record's flavor: as configured now, or the flavor's own name. */
  topicOf(flavor: string): string {
    return this.byName.get(flavor)?.topic ?? flavor;
  }

  headersOf(flavor: string): Kafka.MessageHeader[] {
    let h = this.headers.get(flavor);
    if (h === undefined) this.headers.set(flavor, (h = [{ flavor }, { instance: this.instance }]));
    return h;
  }

  /** The message's key (key.ts): the same for the normal path, the drainer and `scratchd replay`. */
  keyOf(json: Buffer): string | null {
    return messageKey(json, this.config.key);
  }
}
