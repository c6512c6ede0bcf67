/**
 * Things sent in order whose reports come back in any order (several
 * partitions, retries). Each waits in the window, under a key that grows
 * with every push, until it is settled; the head passes over the settled
 * prefix, so everything behind the head has its report. That prefix is a
 * watermark: the spool's acknowledged sequence (kafka/spool/ledger.ts) and
 * the replay's resume position (recovery/watermark.ts) are both one.
 */
import { Fifo } from './fifo.js';

interface Slot<T> {
  key: number;
  item: T;
  settled: boolean;
}

export class AckWindow<T> {
  private readonly slots = new Fifo<Slot<T>>();
  private unsettled = 0;

  /** Items in the window not yet settled. */
  get waiting(): number {
    return this.unsettled;
  }

  /** `key` is above every key pushed before; `settled` for one already known done. */
  push(key: number, item: T, settled = false): void {
    this.slots.push({ key, item, settled });
    if (!settled) this.unsettled++;
  }

  /** Settle the item under `key`: the item if it was waiting; null when it is not in the window or was settled before. */
  settle(key: number): T | null {
    const s = this.find(key);
    if (s === undefined || s.settled) return null;
    s.settled = true;
    this.unsettled--;
    return s.item;
  }

  /** Whether the item under `key` is in the window and settled. */
  isSettled(key: number): boolean {
    return this.find(key)?.settled === true;
  }

  /** Take settled items off the head, in order, while `pass` takes them (returns true). */
  advance(pass: (item: T, key: number) => boolean): void {
    for (let s = this.slots.at(0); s !== undefined && s.settled && pass(s.item, s.key); s = this.slots.at(0)) this.slots.shift();
  }

  /** The first item not yet settled. */
  firstWaiting(): T | undefined {
    for (let i = 0, s = this.slots.at(0); s !== undefined; s = this.slots.at(++i)) if (!s.settled) return s.item;
    return undefined;
  }

  /** Keys of the settled items still in the window (behind one that waits). */
  settledKeys(): number[] {
    const keys: number[] = [];
    for (let i = 0, s = this.slots.at(0); s !== undefined; s = this.slots.at(++i)) if (s.settled) keys.push(s.key);
    return keys;
  }

  clear(): void {
    this.slots.clear();
    this.unsettled = 0;
  }

  /** Keys grow along the window: a binary search. */
  private find(key: number): Slot<T> | undefined {
    let lo = 0;
    let hi = this.slots.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.slots.at(mid)!;
      if (s.key === key) return s;
      if (s.key < key) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }
}
