/**
 * A first-in first-out queue with indexed access. Items leave from the head
 * by moving an index; the array under it is compacted now and then instead
 * of shifted on every removal (Array#shift copies the whole array).
 * Hand-written: the queues at hand (fast-fifo, yocto-queue) have no indexed
 * access, which the acknowledgement window's search needs.
 */

/** Compact once this many items have left, and they are more than half the array. */
const COMPACT_AFTER = 1024;

export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The item `i` places after the head (0: the head itself), or undefined. */
  at(i: number): T | undefined {
    return i < 0 ? undefined : this.items[this.head + i];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > COMPACT_AFTER && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
