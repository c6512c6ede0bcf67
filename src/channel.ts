/**
 * A bounded queue between the request path and one backend's consumer, in
 * the spirit of a buffered Go channel used with `select { case ch <- v:
 * default: drop }`: `send` never waits, it reports false when full.
 *
 * The consumer takes everything queued at once (`receive`), which is what
 * makes batching cheap: one wake-up and one write per batch, not per item.
 * The wake-up is deferred with setImmediate so that all requests uWS reads
 * in one event-loop turn land in the same batch.
 *
 * Bounded by count, and by bytes too when given `bytesOf`: a count alone lets
 * a queue of large items (Lines of a 128 KiB body) take gigabytes.
 */
export class Channel<T> {
  private items: T[] = [];
  private spare: T[] = [];
  private waiter: ((batch: T[]) => void) | null = null;
  private wakeScheduled = false;
  private closed = false;

  private queuedBytes = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = Infinity,
    private readonly bytesOf: ((item: T) => number) | null = null,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Bytes queued, as `bytesOf` counts them (0 without it). */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Queue `item`; false when the channel is full (by count or bytes) or closed. */
  send(item: T): boolean {
    if (this.closed || this.items.length >= this.capacity) return false;
    if (this.bytesOf !== null) {
      const n = this.bytesOf(item);
      if (this.queuedBytes + n > this.maxBytes) return false;
      this.queuedBytes += n;
    }
    this.items.push(item);
    if (this.waiter !== null && !this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(this.wake);
    }
    return true;
  }

  /**
   * Resolves with every queued item, waiting for at least one. Resolves with
   * an empty batch once the channel is closed and empty. The returned array
   * is reused: finish with it before calling `receive` again.
   */
  receive(): Promise<T[]> {
    if (this.items.length > 0) return Promise.resolve(this.take());
    if (this.closed) return Promise.resolve(this.take());
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Everything queued, taken out now (the channel is left empty): for giving up at shutdown, or spilling a full queue to disk. */
  drainAll(): T[] {
    const items = this.items;
    this.items = [];
    this.queuedBytes = 0;
    return items;
  }

  /** No more sends; a waiting or later `receive` gets what is left. */
  close(): void {
    this.closed = true;
    if (this.waiter !== null && !this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(this.wake);
    }
  }

  private readonly wake = (): void => {
    this.wakeScheduled = false;
    const waiter = this.waiter;
    // drainAll may have emptied the queue since this wake-up was scheduled:
    // an empty batch means "closed", so the consumer keeps waiting instead.
    if (waiter === null || (this.items.length === 0 && !this.closed)) return;
    this.waiter = null;
    waiter(this.take());
  };

  private take(): T[] {
    this.queuedBytes = 0;
    const batch = this.items;
    this.spare.length = 0;
    this.items = this.spare;
    this.spare = batch;
    return batch;
  }
}
