/**
 * Lines in doubt: at a shutdown with the broker gone, the Lines librdkafka
 * had sent without a delivery report may be in the topic or not. They are
 * kept (the spool's tail, or still in the spool), and without more the next
 * start sends every one again: at least once. The doubt file says which
 * they were, by fingerprint, and where in each partition they can be: past
 * the last offset acknowledged there (with idempotence on, a partition's
 * order is produce order), and not before the oldest one's timestamp. The
 * next start reads that part of the topic back (readback.ts) before it
 * sends anything, and what it finds there is not sent again.
 *
 * `in-doubt.json` in the spool's directory, replaced atomically:
 *
 *   { "version": 1, "instance": "...",
 *     "unsure": { "minTime": ms, "acked": { topic: { partition: offset } },
 *                 "prints": [fingerprint, ...] },      // read back at start
 *     "confirmed": { fingerprint: count },             // found, not sent yet
 *     "delivered": { fingerprint: count } }            // acknowledged, counted
 *
 * `delivered`: spooled records Kafka acknowledged above the spool's
 * watermark before a clean stop (delivered-ahead.ts); still in the spool,
 * they are skipped like `confirmed` ones, but not counted `persisted` again.
 * A file without it (older) has none.
 *
 * A fingerprint is of the topic, the timestamp and the payload: two Lines
 * alike in all three are one fingerprint twice, and counted so.
 */
import { hash } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';

export const DOUBT_FILE = 'in-doubt.json';

export interface Unsure {
  /** The oldest timestamp among them: nothing older needs reading. */
  minTime: number;
  /** Per topic, per partition, the highest offset acknowledged before the shutdown. */
  acked: Record<string, Record<string, number>>;
  /** One per Line in doubt (repeated for Lines alike). */
  prints: string[];
}

export interface Doubt {
  version: 1;
  instance: string;
  unsure: Unsure | null;
  /** Found in the topic and still in the spool: skip this many of each. */
  confirmed: Record<string, number>;
  /** Acknowledged (and counted) before the stop, still in the spool: skip this many of each. */
  delivered?: Record<string, number>;
}

/** A Line as the message it becomes: what its fingerprint is made of. */
export interface Printable {
  readonly topic: string;
  readonly time: number;
  readonly payload: Buffer;
}

/** The message a Line becomes, as the read-back sees it again. */
export function fingerprint(topic: string, time: number, payload: Buffer): string {
  return hash('sha1', Buffer.concat([Buffer.from(`${topic}\n${time}\n`), payload]), 'base64');
}

/** A multiset of fingerprints. */
export class Tally {
  private readonly counts = new Map<string, number>();
  private total = 0;

  static of(counts: Record<string, number>): Tally {
    const t = new Tally();
    for (const [print, n] of Object.entries(counts)) t.add(print, n);
    return t;
  }

  get size(): number {
    return this.total;
  }

  add(print: string, n = 1): void {
    if (n <= 0) return;
    this.counts.set(print, (this.counts.get(print) ?? 0) + n);
    this.total += n;
  }

  /** Takes one `print` if there is one. */
  take(print: string): boolean {
    const n = this.counts.get(print);
    if (n === undefined) return false;
    if (n === 1) this.counts.delete(print);
    else this.counts.set(print, n - 1);
    this.total--;
    return true;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

/** The doubt file of `dir`, or null when there is none (or it cannot be read: then at least once, as before). */
export async function readDoubt(dir: string): Promise<Doubt | null> {
  let text: string;
  try {
    text = await readFile(join(dir, DOUBT_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const d = JSON.parse(text) as Doubt;
    if (d.version !== 1 || typeof d.instance !== 'string' || typeof d.confirmed !== 'object' || d.confirmed === null) return null;
    if (d.delivered !== undefined && (typeof d.delivered !== 'object' || d.delivered === null)) return null;
    return d;
  } catch {
    return null;
  }
}

export function writeDoubt(dir: string, doubt: Doubt): Promise<void> {
  return writeFileAtomic(join(dir, DOUBT_FILE), JSON.stringify(doubt));
}

export async function removeDoubt(dir: string): Promise<void> {
  await unlink(join(dir, DOUBT_FILE)).catch(() => {});
}
