/**
 * A 64-bit key hash in two 32-bit lanes, fed part by part without building
 * the key: strings by UTF-16 unit, bytes two at a time. Hand-written because it
 * runs on every hit of a flavor with dedup on: node's crypto hashes cost a
 * call into C++ and a digest object per key, and a key string joined from
 * its parts would be an allocation per hit. The mixing is bryc's cyrb53
 * (public domain) widened to two full lanes. Seeded at random per process
 * (seedHash), so a client cannot compute collisions to hide someone else's hits.
 */
import { randomBytes } from 'node:crypto';

/** The two lanes' multipliers (cyrb53's). */
const M1 = 2654435761;
const M2 = 1597334677;

let SEED1 = 0;
let SEED2 = 0;

/**
 * The process's seed: every serving thread must hash a key alike (the main
 * thread's stores judge keys from all of them), so the main thread makes
 * one and hands it to each (threads/serving.ts).
 */
export function seedHash(seed: Uint8Array): void {
  const b = Buffer.from(seed);
  SEED1 = b.readUInt32LE(0);
  SEED2 = b.readUInt32LE(4);
}
seedHash(randomBytes(8));

/** The running hash of one key; `hi` and `lo` after `end()`. */
export class Hash64 {
  h1 = 0;
  h2 = 0;
  hi = 0;
  lo = 0;

  begin(): this {
    this.h1 = 0xdeadbeef ^ SEED1;
    this.h2 = 0x41c6ce57 ^ SEED2;
    return this;
  }

  /** One unit of a part fed piece by piece; `part()` ends it. */
  raw(c: number): void {
    this.mix(c);
  }

  private mix(c: number): void {
    this.h1 = Math.imul(this.h1 ^ c, M1);
    this.h2 = Math.imul(this.h2 ^ c, M2);
  }

  // The loops keep the lanes in locals (a field written per unit is a
  // store and a reload on the hash's dependency chain). A step mixes 16
  // bits at most: xor and multiply carry only upwards, so inputs apart only
  // in a step's top bit (bit 31) stay apart only there, and two such steps
  // cancel whatever the seed; a step of two units or four bytes would let a
  // client write such pairs (two User-Agents with one key).
  string(s: string): this {
    let h1 = this.h1;
    let h2 = this.h2;
    const n = s.length;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, M1);
      h2 = Math.imul(h2 ^ c, M2);
    }
    this.h1 = h1;
    this.h2 = h2;
    return this.part(n);
  }

  bytes(b: Uint8Array, start = 0, end = b.length): this {
    let h1 = this.h1;
    let h2 = this.h2;
    let i = start;
    for (; i + 1 < end; i += 2) {
      const c = b[i]! | (b[i + 1]! << 8);
      h1 = Math.imul(h1 ^ c, M1);
      h2 = Math.imul(h2 ^ c, M2);
    }
    // An odd last byte as one unit (the part's length, mixed after, tells
    // "a" from "a\0").
    if (i < end) {
      const c = b[i]!;
      h1 = Math.imul(h1 ^ c, M1);
      h2 = Math.imul(h2 ^ c, M2);
    }
    this.h1 = h1;
    this.h2 = h2;
    return this.part(end - start);
  }

  /**
   * A Values field the Line lacks: a part of no bytes, which no value is
   * (its JSON has two at least). Not an all-ones mark: xor with all ones
   * is a negation, which a multiply keeps, so ("absent", "\x03") and
   * ("\x03", "absent") met under some seeds.
   */
  absent(): this {
    return this.part(0);
  }

  /** A number as its own part (an entry's position). */
  number(n: number): this {
    this.mix(n);
    return this.part(1);
  }

  /** Each part ends with its length, so ("ab","c") and ("a","bc") differ. */
  part(length: number): this {
    this.mix(0x80000000 | length);
    return this;
  }

  end(): this {
    let h1 = this.h1;
    let h2 = this.h2;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.hi = h2 >>> 0;
    this.lo = h1 >>> 0;
    return this;
  }

  /** Carry on from a saved state (a request's parts, then each Line's). */
  resume(h1: number, h2: number): this {
    this.h1 = h1;
    this.h2 = h2;
    return this;
  }
}
