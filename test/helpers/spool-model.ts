/**
 * For the spool's crash-consistency harnesses: a Spool driven through
 * test/helpers/fs-faults.ts with a small model of what must be delivered.
 *
 *   - every record the spool took (append() true) and wrote before a crash
 *     (nothing left unwritten since) is delivered in this run, or after a
 *     restart, or was counted dropped (onDrop) before the crash;
 *   - a record is dropped only before it was written: the newest, never an
 *     older one already on disk;
 *   - the ledger never runs ahead of delivery: every record handed out with
 *     a sequence at or below it was acknowledged (or counted dropped);
 *   - what a restart hands out is in arrival order, each record once;
 *   - isEmpty() is not true while a record taken waits (checkEmpty()).
 *
 * A crash freezes the disk (fs-faults), which is what a process crash does:
 * the page cache keeps what was written. Records still unwritten when it
 * happens (appended in that same event-loop turn, or while the write before
 * them was under way) are the stated window and not claimed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeLogger } from '../../src/log.js';
import { readLedger } from '../../src/kafka/spool/ledger.js';
import { Spool, type SpoolConfig } from '../../src/kafka/spool/spool.js';
import type { FsFaults } from './fs-faults.js';

const log = makeLogger('silent');

export const payload = (id: number, pad = 30): Buffer => Buffer.from(JSON.stringify({ id: String(id), pad: 'x'.repeat(pad) }));
const idOf = (p: Buffer): number => Number((JSON.parse(p.toString()) as { id: string }).id);

export class SpoolModel {
  readonly dir: string;
  s: Spool | null = null;
  private nextId = 1;
  readonly appended: number[] = [];
  /** Taken by this incarnation. */
  private mine: number[] = [];
  /** Taken by this incarnation, not yet known written. */
  private unclaimed: number[] = [];
  readonly written = new Set<number>();
  readonly dropped = new Set<number>();
  readonly delivered = new Set<number>();
  /** This incarnation's handed-out records not yet acknowledged, by sequence. */
  private out = new Map<number, number>();
  /** This incarnation's records handed out, sequence to id (a restart may reuse sequences never written). */
  private handed = new Map<number, number>();
  readonly violations: string[] = [];
  /** What the harness saw go wrong in the spool (thrown), for the report; not violations by themselves. */
  readonly errors: string[] = [];

  constructor(private readonly faults: FsFaults, private readonly config: Partial<SpoolConfig> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'spool-model-'));
    faults.reset();
    faults.under(this.dir);
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Open a spool on the directory (a start or a restart); false when open() failed (a fault). */
  async start(): Promise<boolean> {
    this.mine = [];
    this.out.clear();
    this.handed.clear();
    const s = new Spool({ enabled: true, dir: this.dir, segmentBytes: 1024, fsyncMs: 3_600_000, maxBytes: 1 << 30, minFreeBytes: 0, ...this.config },
      log, (reason, _flavor, time) => {
        if (this.faults.crashed()) return; // the process is dead: its drops are nobody's
        if (this.written.has(time)) this.violations.push(`record ${time} dropped (${reason}) after it was written: an old one, not the newest`);
        this.dropped.add(time);
      });
    try {
      await s.open();
    } catch (err) {
      this.errors.push(`open: ${(err as Error).message}`);
      this.s = null;
      return false;
    }
    this.s = s;
    return true;
  }

  get crashed(): boolean {
    return this.faults.crashed();
  }

  append(n: number, pad = 30): void {
    if (this.s === null || this.crashed) return;
    for (let i = 0; i < n; i++) {
      const id = this.nextId++;
      if (this.s.append('gr', id, payload(id, pad))) {
        this.appended.push(id);
        this.mine.push(id);
        this.unclaimed.push(id);
      }
    }
  }

  /** Let the spool write what was appended; then those records are claimed (unless the disk froze first). */
  async settle(): Promise<void> {
    const s = this.s;
    if (s === null) return;
    for (let i = 0; i < 2000 && s.unwrittenBytes > 0 && !this.crashed; i++) await new Promise((r) => setImmediate(r));
    if (this.crashed || s.unwrittenBytes > 0) return;
    this.claim();
  }

  private claim(): void {
    // Handed over from RAM and their write failed: not on disk (see recover()).
    const notOnDisk = new Set((this.s?.unwrittenHandedOver() ?? []).map((seq) => this.handed.get(seq)));
    for (const id of this.unclaimed) if (!this.dropped.has(id) && !notOnDisk.has(id)) this.written.add(id);
    this.unclaimed = [];
  }

  /** Read up to max; acknowledge those whose id passes `ack` (the rest stay out, as a report not yet come). */
  async read(max: number, ack: (id: number) => boolean = () => true): Promise<void> {
    if (this.s === null || this.crashed) return;
    let rs;
    try {
      rs = await this.s.read(max);
    } catch (err) {
      this.errors.push(`read: ${(err as Error).message}`);
      return;
    }
    for (const r of rs) {
      const id = idOf(r.payload);
      this.handed.set(r.seq, id);
      if (ack(id)) this.ackSeq(r.seq, id);
      else this.out.set(r.seq, id);
    }
  }

  /** As the drainer does once it caught up: the unwritten appends from RAM (left out, reported later). */
  handOver(): void {
    if (this.s === null || this.crashed || !this.s.canHandOver()) return;
    for (const r of this.s.handOver()) {
      const id = idOf(r.payload);
      this.handed.set(r.seq, id);
      this.out.set(r.seq, id);
    }
  }

  /** Acknowledge the records still out whose id passes `which`. */
  ackOut(which: (id: number) => boolean): void {
    if (this.s === null || this.crashed) return;
    for (const [seq, id] of [...this.out]) if (which(id)) this.ackSeq(seq, id);
  }

  private ackSeq(seq: number, id: number): void {
    this.out.delete(seq);
    this.delivered.add(id);
    this.s!.ack(seq);
  }

  rewind(): void {
    if (this.s === null || this.crashed) return;
    this.out.clear();
    this.s.rewind();
  }

  async flush(): Promise<void> {
    if (this.s === null || this.crashed) return;
    await this.s.flush();
    this.checkLedger();
  }

  /** A clean stop and start (recovery runs). */
  async restart(): Promise<void> {
    if (this.s !== null && !this.crashed) {
      await this.s.close().catch((err: unknown) => { this.errors.push(`close: ${(err as Error).message}`); });
      if (!this.crashed) this.claim(); // close() wrote them, or counted them dropped
      this.checkLedger();
    }
    if (this.crashed) return;
    if (!(await this.start()) && !this.crashed) await this.start();
  }

  /** The process dies now; a new one starts on the same directory. */
  async crash(): Promise<void> {
    this.faults.crashNow();
    await this.recover();
  }

  /** After a crash (frozen disk): faults off, a new spool on the same directory. */
  async recover(): Promise<void> {
    this.checkLedger();
    // The dead process's descriptors go (the disk frozen, nothing else changes).
    // Handed over from RAM, their write failed, no report yet: a crash now
    // loses them (the stated window, like the appends not yet written).
    for (const seq of this.s?.unwrittenHandedOver() ?? []) {
      const id = this.handed.get(seq);
      if (id !== undefined && !this.delivered.has(id)) this.written.delete(id);
    }
    await this.s?.close().catch(() => {});
    this.unclaimed = []; // appended but not written when the process died: the stated window
    this.faults.reset();
    await this.start();
  }

  /** isEmpty() is never true while a record this incarnation took is neither delivered nor dropped. */
  checkEmpty(): void {
    if (this.s === null || this.crashed || !this.s.isEmpty()) return;
    const waiting = this.mine.filter((id) => !this.delivered.has(id) && !this.dropped.has(id));
    if (waiting.length > 0) this.violations.push(`isEmpty() while ${waiting.length} records wait (${waiting.slice(0, 5).join(',')})`);
  }

  checkLedger(): void {
    const l = readLedger(this.dir);
    if (typeof l === 'string') return;
    for (const [seq, id] of this.handed) {
      if (seq <= l.acked && !this.delivered.has(id) && !this.dropped.has(id)) this.violations.push(`ledger at ${l.acked} ahead of delivery: record ${id} (sequence ${seq}) not acknowledged`);
    }
  }

  /** The end: faults off, a restart, everything drained; then the invariants. */
  async finish(): Promise<string[]> {
    this.checkLedger();
    if (this.crashed) await this.recover();
    else this.faults.reset();
    if (this.s !== null) await this.s.close().catch(() => {});
    if (!(await this.start())) return [...this.violations, `the final start failed: ${this.errors.at(-1)}`];
    const s = this.s!;
    const recovered: number[] = [];
    for (let guard = 0; guard < 10_000; guard++) {
      const rs = await s.read(200);
      if (rs.length === 0) break;
      for (const r of rs) {
        recovered.push(idOf(r.payload));
        s.ack(r.seq);
      }
    }
    await s.close();
    const v = [...this.violations];
    for (let i = 1; i < recovered.length; i++) {
      if (recovered[i]! <= recovered[i - 1]!) { v.push(`after the restart, ${recovered[i]} came after ${recovered[i - 1]}: out of order or twice`); break; }
    }
    const got = new Set(recovered);
    const lost = [...this.written].filter((id) => !this.delivered.has(id) && !got.has(id) && !this.dropped.has(id));
    if (lost.length > 0) v.push(`lost without a count: ${lost.length} written records (${lost.slice(0, 10).join(',')})`);
    const taken = new Set(this.appended);
    const strange = recovered.filter((id) => !taken.has(id));
    if (strange.length > 0) v.push(`records never taken came back: ${strange.slice(0, 10).join(',')}`);
    return v;
  }
}
