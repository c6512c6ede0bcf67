/**
 * A POST body as uWS hands it over, piece by piece. Memory follows the bytes
 * received, whatever the pieces' sizes: one buffer per request, grown by
 * doubling (so at most twice what arrived, never over the body limit), and a
 * process-wide budget for every body held between reads. A client that sends
 * `1\r\na\r\n` a million times costs its bytes, not a million buffers.
 */

/**
 * Body bytes held between reads by every request of every serving thread,
 * against limits.maxBodyBytesInFlight: one counter in shared memory (the
 * main thread hands it to each thread). Only a body that spans reads
 * touches it.
 */
export class BodyBudget {
  private readonly shared: BigInt64Array;

  constructor(public max: number, memory: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.shared = new BigInt64Array(memory);
  }

  get held(): number {
    return Number(Atomics.load(this.shared, 0));
  }

  /** Hold `delta` more bytes (less when negative); growing past max is refused and changes nothing. */
  change(delta: number): boolean {
    if (delta === 0) return true;
    const after = Number(Atomics.add(this.shared, 0, BigInt(delta))) + delta;
    if (delta > 0 && after > this.max) {
      Atomics.sub(this.shared, 0, BigInt(delta));
      return false;
    }
    return true;
  }
}

/** Why a piece was not taken. */
export type Refused = 'body_too_large' | 'busy';

/** The first buffer a body held across reads gets: small, so a trickle costs little. */
const FIRST_BYTES = 1024;
const EMPTY = Buffer.alloc(0);

export class Body {
  private buf = EMPTY;
  private size = 0;
  /** How much of `buf` is counted in the budget: all of it while the body waits for more. */
  private counted = 0;

  /** `limit`: limits.maxBodyBytes; `expected`: the Content-Length, when there is one. */
  constructor(private readonly budget: BodyBudget, private readonly limit: number, private readonly expected: number | null) {}

  /**
   * Copy the piece in (uWS reuses its memory after the callback). `last`: the
   * body ends with it, so a body that arrives whole is copied once and never
   * counted as held.
   */
  add(piece: Uint8Array, last: boolean): Refused | null {
    const need = this.size + piece.byteLength;
    if (need > this.limit) return 'body_too_large';
    if (need > this.buf.length) {
      const cap = Math.min(this.expected ?? this.limit, this.limit);
      const room = last ? need : Math.max(need, Math.min(cap, Math.max(this.buf.length * 2, FIRST_BYTES)));
      const counted = last ? 0 : room;
      if (counted > 0 && !this.budget.change(counted - this.counted)) return 'busy';
      if (counted === 0) this.budget.change(-this.counted);
      const next = Buffer.allocUnsafe(room);
      this.buf.copy(next, 0, 0, this.size);
      this.counted = counted;
      this.buf = next;
    }
    this.buf.set(piece, this.size);
    this.size = need;
    return null;
  }

  /** The body so far: a view, valid until release(). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.size);
  }

  /** Hand the held bytes back to the budget; the body is empty again. Safe to call twice. */
  release(): void {
    this.budget.change(-this.counted);
    this.counted = 0;
    this.buf = EMPTY;
    this.size = 0;
  }
}
