/**
 * Relay batches taken in the order they were numbered (relay.ts): a batch
 * that comes early waits for those before it, which are on their way (a
 * number is taken only by a thread about to post it). The numbers come from
 * a shared Uint32 counter, so they wrap at 2^32, and so does `next`.
 */
export class InOrder<T> {
  private next = 0;
  private readonly early = new Map<number, T>();

  constructor(private readonly take: (item: T) => void) {}

  arrived(seq: number, item: T): void {
    if (seq !== this.next) {
      this.early.set(seq, item);
      return;
    }
    this.take(item);
    this.next = (this.next + 1) >>> 0;
    for (let e = this.early.get(this.next); e !== undefined; e = this.early.get(this.next)) {
      this.early.delete(this.next);
      this.take(e);
      this.next = (this.next + 1) >>> 0;
    }
  }

  /** Batches waiting now (tests, and the drain's last look). */
  get waiting(): number {
    return this.early.size;
  }

  /** Every sender ended: take what still waits for a number that will never come, in number order from `next`. */
  flush(): void {
    const from = this.next;
    for (const seq of [...this.early.keys()].sort((a, b) => ((a - from) >>> 0) - ((b - from) >>> 0))) {
      const item = this.early.get(seq)!;
      this.early.delete(seq);
      this.take(item);
    }
  }
}
