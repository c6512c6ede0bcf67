/**
 * A flavor's dedup key, made of the request's parts (read in the handler,
 * while the request is valid) and the Line's Values fields (read from its
 * JSON). One DedupHit per request: a POST's body arrives in chunks, and a
 * bulk body's Lines are checked one by one, each with its position when the
 * key names no Values field (then entries differ only by where they are).
 */
import { REQUEST_PARTS, type DedupConfig } from './config.js';
import { fromFlat, memberOf, nameHash } from '../query/index.js';
import { Hash64 } from './hash.js';
import type { DedupStore } from './store.js';
import { findFlat, findNested, nested, Needle, type Span } from './values.js';

export interface DedupCounters {
  /** Hits answered and not recorded: their key was seen within the window. */
  duplicates: number;
  /** Keys the bound pushed out before their window ended. */
  evictions: number;
}

/** What a flavor's key reads, compiled once. */
export class KeySpec {
  readonly ip: boolean;
  readonly userAgent: boolean;
  readonly query: boolean;
  readonly body: boolean;
  /**
   * Per Values field: `"name"` and its hash for the converter's entry table
   * (and for Lines with nesting), and its needle for other Lines without.
   */
  readonly names: readonly Buffer[];
  readonly hashes: Int32Array;
  readonly needles: readonly Needle[];
  /**
   * Per Values field: the converter's entry it was found at last, tried
   * first (memberOf): a tracker sends its parameters in one order.
   */
  readonly hints: Int32Array;

  constructor(config: DedupConfig) {
    const k = new Set(config.key);
    this.ip = k.has('ip');
    this.userAgent = k.has('userAgent');
    this.query = k.has('query');
    this.body = k.has('body');
    const fields = config.key.filter((p) => !REQUEST_PARTS.has(p));
    this.names = fields.map((f) => Buffer.from(JSON.stringify(f)));
    this.hashes = Int32Array.from(this.names, nameHash);
    this.needles = fields.map((f) => new Needle(f));
    this.hints = new Int32Array(fields.length);
  }

  /** Whether the key reads request headers (the client IP or the User-Agent). */
  get headers(): boolean {
    return this.ip || this.userAgent;
  }
}

/** A flavor's store, key and counters. */
export interface FlavorDedup {
  readonly spec: KeySpec;
  /** Null on a serving thread: it computes keys, the main thread's store judges them. */
  readonly store: DedupStore | null;
  readonly counters: DedupCounters;
}

/** A dedup key: the two halves of a 64-bit hash (hash.ts). */
export interface DedupKey {
  hi: number;
  lo: number;
}

// Shared by every hit: a request's hashing runs to its end synchronously
// between two resumes, so one instance serves all.
const hash = new Hash64();
const span: Span = { start: -1, end: -1 };

export class DedupHit {
  private d!: FlavorDedup;
  private h1 = 0;
  private h2 = 0;
  private bodyBytes = 0;
  private bodyOpen = false;
  private entry = 0;

  /**
   * Start a hit: `ip` canonical (client-ip.ts), `query` and `userAgent` as
   * received; '' when the key does not use them. A GET reuses one DedupHit
   * (its Line is checked before the handler returns); a POST has its own.
   */
  start(d: FlavorDedup, ip: string, userAgent: string, query: string): this {
    const s = d.spec;
    this.d = d;
    hash.begin();
    if (s.ip) hash.string(ip);
    if (s.userAgent) hash.string(userAgent);
    if (s.query) hash.string(query);
    this.h1 = hash.h1;
    this.h2 = hash.h2;
    this.bodyBytes = 0;
    this.bodyOpen = s.body;
    this.entry = 0;
    return this;
  }

  /** A piece of the raw body, in order (when the key has `body`). */
  chunk(piece: ArrayBuffer | Uint8Array): void {
    if (!this.bodyOpen) return;
    const b = piece instanceof Uint8Array ? piece : new Uint8Array(piece);
    hash.resume(this.h1, this.h2);
    for (let i = 0; i < b.length; i++) hash.raw(b[i]!);
    this.h1 = hash.h1;
    this.h2 = hash.h2;
    this.bodyBytes += b.length;
  }

  /**
   * Whether this Line of the hit repeats one seen within the window (then
   * it is counted and must not be recorded); else it is remembered.
   */
  repeated(json: Buffer, now: number): boolean {
    const { store, counters } = this.d;
    this.key(json);
    const seen = store!.seen(hash.hi, hash.lo, now);
    if (seen) counters.duplicates++;
    return seen;
  }

  /**
   * This Line's key, in `out`: a serving thread computes it, the main
   * thread's store (one per flavor for all threads) judges it (seenKey).
   */
  keyOf(json: Buffer, out: DedupKey): void {
    this.key(json);
    out.hi = hash.hi;
    out.lo = hash.lo;
  }

  private key(json: Buffer): void {
    const { spec } = this.d;
    if (this.bodyOpen) {
      hash.resume(this.h1, this.h2).part(this.bodyBytes);
      this.h1 = hash.h1;
      this.h2 = hash.h2;
      this.bodyOpen = false;
    }
    hash.resume(this.h1, this.h2);
    const n = spec.needles.length;
    if (n === 0) {
      hash.number(this.entry++);
    } else {
      // The Line the converter just made: its entry table says where each
      // member is. Any other Line (stripped, merged, compacted, from the
      // Rack port, an earlier bulk entry) is searched.
      const known = fromFlat(json);
      const deep = !known && nested(json);
      for (let i = 0; i < n; i++) {
        if (known) spec.hints[i] = memberOf(json, spec.names[i]!, spec.hashes[i]!, span, spec.hints[i]!);
        else if (deep) findNested(json, spec.names[i]!, span);
        else findFlat(json, spec.needles[i]!, span);
        if (span.start < 0) hash.absent();
        else hash.bytes(json, span.start, span.end);
      }
    }
    hash.end();
  }
}
