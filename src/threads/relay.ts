/**
 * The relay: Lines from a serving thread to the backends on the main thread.
 *
 * A serving thread packs the Lines of one event-loop turn into one buffer
 * and posts it once, transferred, not copied: nothing is posted per Line.
 * The relay is bounded. The bytes posted and not yet unpacked by the main
 * thread are counted in a shared Int32 (Atomics), so the serving thread can
 * see how far behind the main thread is without a message. A request whose
 * Lines would pass the capacity of a relay not empty is refused before it is answered
 * (`relay_full`, 503), counted, and told to the loss tracker; the relay
 * never blocks and never grows.
 *
 * Hand-written on the hot path: a record is a few fixed fields and the
 * Line's JSON, copied once into a scratch buffer that is reused.
 *
 * Record (little endian): u8 flavor name length, the name (UTF-8), f64 time,
 * u8 1 when a dedup key follows, [u32 hi, u32 lo], u32 JSON length, the JSON.
 */
import type { DedupKey } from '../dedup/key.js';

export type { DedupKey };

/** One turn's Lines, as posted to the main thread. */
export interface RelayBatch {
  type: 'lines';
  /**
   * Taken from a counter all threads share when the batch's first Line was
   * packed, before that Line's answer went out. The main thread takes
   * batches in this order, so a Line answered before another hit was even
   * sent (on any connection, to any thread) is handed to the backends first.
   */
  seq: number;
  /** Exactly the packed records (its own ArrayBuffer, transferred). */
  lines: ArrayBuffer;
  /** Whether any record carries a dedup key. */
  keyed: boolean;
  /** Refused for a full relay since the last batch: by flavor, the first and last arrival time and how many. */
  refused: [flavor: string, first: number, last: number, count: number][];
}

const FIXED = 1 + 8 + 1 + 8 + 4;

export class RelayWriter {
  private scratch = Buffer.allocUnsafeSlow(64 * 1024);
  private at = 0;
  private scheduled = false;
  private readonly names = new Map<string, Buffer>();
  private lastFlavor = '';
  private lastName: Buffer = Buffer.alloc(0);
  private refused = new Map<string, [number, number, number]>();
  private keyed = false;

  /**
   * `inFlight[0]`: bytes posted and not yet unpacked (the main thread
   * subtracts what it unpacked). `post`: hands a batch to the main thread.
   */
  private seq = 0;

  constructor(
    private readonly inFlight: Int32Array,
    public capacity: number,
    private readonly post: (batch: RelayBatch) => void,
    /** [0]: the next batch's sequence number, shared by every thread (it wraps at 2^32). */
    private readonly order: Uint32Array,
  ) {}

  /** Bytes of a record for this Line: to ask `fits` before answering. */
  size(flavor: string, json: Buffer, key: boolean): number {
    return FIXED + this.name(flavor).length + json.length - (key ? 0 : 8);
  }

  /**
   * Whether `bytes` more fit within the capacity now. An empty relay takes
   * any one Line: a Line longer than the capacity (a long query or body,
   * which maxBulkBytes does not bound) is not a full relay, and no wait
   * would make it fit.
   */
  fits(bytes: number): boolean {
    const used = Atomics.load(this.inFlight, 0) + this.at;
    return used === 0 || used + bytes <= this.capacity;
  }

  /** Pack one Line; posted with the rest of this turn's. The caller asked `fits` first. */
  add(flavor: string, time: number, json: Buffer, key: DedupKey | null): void {
    const name = this.name(flavor);
    const need = FIXED + name.length + json.length;
    if (this.at + need > this.scratch.length) this.grow(this.at + need);
    const b = this.scratch;
    let at = this.at;
    b[at++] = name.length;
    name.copy(b, at);
    at += name.length;
    b.writeDoubleLE(time, at);
    at += 8;
    if (key === null) {
      b[at++] = 0;
    } else {
      b[at++] = 1;
      this.keyed = true;
      b.writeUInt32LE(key.hi >>> 0, at);
      b.writeUInt32LE(key.lo >>> 0, at + 4);
      at += 8;
    }
    b.writeUInt32LE(json.length, at);
    at += 4;
    json.copy(b, at);
    this.at = at + json.length;
    this.schedule();
  }

  /** A Line refused because the relay was full: told to the main thread with the next batch. */
  refuse(flavor: string, time: number): void {
    const r = this.refused.get(flavor);
    if (r === undefined) this.refused.set(flavor, [time, time, 1]);
    else {
      r[1] = time;
      r[2]++;
    }
    this.schedule();
  }

  /** Post what this turn packed (also called before answering a counters request, so they stay in step). */
  flush(): void {
    this.scheduled = false;
    if (this.at === 0 && this.refused.size === 0) return;
    const lines = new ArrayBuffer(this.at);
    new Uint8Array(lines).set(this.scratch.subarray(0, this.at));
    Atomics.add(this.inFlight, 0, this.at);
    const refused = [...this.refused].map(([f, [first, last, count]]) => [f, first, last, count] as [string, number, number, number]);
    const keyed = this.keyed;
    this.at = 0;
    this.keyed = false;
    if (this.refused.size > 0) this.refused = new Map();
    this.post({ type: 'lines', seq: this.seq, lines, keyed, refused });
  }

  /** Bytes posted and not yet unpacked, plus those packed this turn. */
  depth(): number {
    return Atomics.load(this.inFlight, 0) + this.at;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.seq = Atomics.add(this.order, 0, 1);
    setImmediate(() => this.flush());
  }

  /** The flavor's name as bytes; the last one is kept aside, since `size` and `add` ask for it in turn. */
  private name(flavor: string): Buffer {
    if (flavor === this.lastFlavor) return this.lastName;
    let n = this.names.get(flavor);
    if (n === undefined) {
      n = Buffer.from(flavor);
      this.names.set(flavor, n);
    }
    this.lastFlavor = flavor;
    this.lastName = n;
    return n;
  }

  private grow(need: number): void {
    let size = this.scratch.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.scratch.copy(next, 0, 0, this.at);
    this.scratch = next;
  }
}

/**
 * The main thread's side: every record of a batch, in order. `json` is a
 * copy: a Line may wait in a backend's queue long after the batch is gone,
 * and must not hold the whole batch's memory.
 */
export function unpack(batch: ArrayBuffer, each: (flavor: string, time: number, json: Buffer, key: DedupKey | null) => void): void {
  const b = Buffer.from(batch);
  let at = 0;
  const key: DedupKey = { hi: 0, lo: 0 };
  const names = new FlavorNames(b);
  while (at < b.length) {
    const n = b[at++]!;
    const flavor = names.at(at, n);
    at += n;
    const time = b.readDoubleLE(at);
    at += 8;
    const keyed = b[at++] === 1;
    if (keyed) {
      key.hi = b.readUInt32LE(at);
      key.lo = b.readUInt32LE(at + 4);
      at += 8;
    }
    const len = b.readUInt32LE(at);
    at += 4;
    const json = Buffer.allocUnsafe(len);
    b.copy(json, 0, at, at + len);
    at += len;
    each(flavor, time, json, keyed ? key : null);
  }
}

/**
 * Before a batch is unpacked: each record's dedup key (its low half) handed
 * to `prefetch`, with how many keyed records came before it in the batch,
 * so that the store can read their table slots all at once (store.ts).
 */
export function prefetchKeys(batch: ArrayBuffer, prefetch: (flavor: string, lo: number, ahead: number) => void): void {
  const b = Buffer.from(batch);
  let at = 0;
  let ahead = 0;
  const names = new FlavorNames(b);
  while (at < b.length) {
    const n = b[at++]!;
    const flavor = names.at(at, n);
    at += n + 8;
    if (b[at++] === 1) {
      prefetch(flavor, b.readUInt32LE(at + 4), ahead++);
      at += 8;
    }
    at += 4 + b.readUInt32LE(at);
  }
}

/** A batch's flavor names: consecutive records mostly name the same flavor, so its string is decoded once, not per Line. */
class FlavorNames {
  private name = '';
  private from = -1;
  private length = -1;
  constructor(private readonly b: Buffer) {}

  /** The name of n bytes at `at`. */
  at(at: number, n: number): string {
    if (n !== this.length || !sameBytes(this.b, this.from, at, n)) {
      this.name = this.b.toString('utf8', at, at + n);
      this.from = at;
      this.length = n;
    }
    return this.name;
  }
}

/** Whether b[x, x+n) equals b[y, y+n): a JS loop, since a flavor's name is a few bytes and a call into C++ costs more. */
function sameBytes(b: Buffer, x: number, y: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}
