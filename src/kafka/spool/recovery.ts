/**
 * Opening a spool directory after any kind of stop: read the ledger, scan
 * every segment, cut each at its first bad record (the cut bytes are kept
 * under quarantine/ for a human, and counted), quarantine segments that
 * cannot be read at all, and delete segments the ledger says are delivered.
 * `readOnly` (for `scratchd spool`) reports the same without changing a byte.
 */
import { copyFile, mkdir, readFile, readdir, rename, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readLedger } from './ledger.js';
import { decodeRecords, type Decoded, type FrameProblem } from './record.js';
import { QUARANTINE, segmentSeq, type SegmentInfo } from './segment.js';

export interface FlavorState {
  records: number;
  bytes: number;
  oldest: number | null;
}

export interface Recovered {
  segments: SegmentInfo[];
  /** The watermark: records at or below it are delivered. */
  acked: number;
  /** Highest sequence ever given out (the next record gets lastSeq + 1). */
  lastSeq: number;
  ledger: 'ok' | 'missing' | 'corrupt';
  /** Segments moved to quarantine/ whole, and segment tails cut off into it. */
  quarantined: number;
  /** What was found wrong, one line each (logged). */
  problems: string[];
  perFlavor: Map<string, FlavorState>;
}

/** Decode this many records, then let the event loop serve (recovery runs beside serving). */
const DECODE_SLICE = 4096;

async function decodeYielding(buf: Buffer): Promise<Decoded> {
  const records: Decoded['records'] = [];
  let at = 0;
  for (;;) {
    const d = decodeRecords(buf, at, DECODE_SLICE);
    records.push(...d.records);
    at = d.end;
    if (d.problem !== null || at >= buf.length) return { records, end: at, problem: d.problem };
    await new Promise((r) => setImmediate(r));
  }
}

export async function recoverSpool(dir: string, readOnly = false): Promise<Recovered> {
  if (!readOnly) await mkdir(dir, { recursive: true, mode: 0o750 });
  const names = (await readdir(dir)).filter((n) => segmentSeq(n) !== null).sort();
  const ledgerRead = readLedger(dir);
  const ledger = typeof ledgerRead === 'string' ? ledgerRead : 'ok';
  const problems: string[] = [];
  let quarantined = 0;
  const quarantine = async (name: string, from: string, cut?: number): Promise<void> => {
    quarantined++;
    if (readOnly) return;
    await mkdir(join(dir, QUARANTINE), { recursive: true, mode: 0o750 });
    const to = join(dir, QUARANTINE, cut === undefined ? name : `${name}.from-${cut}`);
    if (cut === undefined) await rename(from, to);
    else await copyFile(from, to);
  };

  // Without a ledger, nothing is known delivered: all records are sent
  // again (duplicates, never loss).
  let acked = typeof ledgerRead === 'string' ? 0 : ledgerRead.acked;
  if (typeof ledgerRead === 'string') problems.push(`ledger ${ledgerRead}: every spooled record will be sent again`);
  let lastSeq = acked;
  const segments: SegmentInfo[] = [];
  const perFlavor = new Map<string, FlavorState>();
  for (const name of names) {
    const path = join(dir, name);
    const firstSeq = segmentSeq(name)!;
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      problems.push(`${name}: unreadable (${(err as Error).message}), quarantined`);
      try { await quarantine(name, path); } catch { /* reported above; left in place */ }
      continue;
    }
    const decoded = await decodeYielding(buf);
    // A record out of sequence is as bad as a bad checksum. (Sequences may
    // skip: Lines dropped by a failed write keep theirs.)
    let good = decoded.records.length;
    let problem: FrameProblem | 'sequence' | null = decoded.problem;
    let prev = firstSeq - 1;
    for (let i = 0; i < decoded.records.length; i++) {
      if (decoded.records[i]!.seq <= prev) {
        good = i;
        problem = 'sequence';
        break;
      }
      prev = decoded.records[i]!.seq;
    }
    const records = decoded.records.slice(0, good);
    const end = good === decoded.records.length ? decoded.end : decoded.records[good]!.offset;
    if (problem !== null && end < buf.length) {
      problems.push(`${name}: ${problem} at byte ${end} of ${buf.length}; the rest cut off into ${QUARANTINE}/`);
      await quarantine(name, path, end);
      if (!readOnly) await truncate(path, end);
    }
    const last = records.length > 0 ? records[records.length - 1]!.seq : firstSeq - 1;
    if (last > lastSeq) lastSeq = last;
    const unacked = records.filter((r) => r.seq > acked);
    if (unacked.length === 0) {
      // Delivered (the ledger says so) or empty: nothing to keep.
      if (!readOnly) await unlink(path);
      continue;
    }
    for (const r of unacked) {
      const f = perFlavor.get(r.flavor) ?? { records: 0, bytes: 0, oldest: null };
      f.records++;
      f.bytes += r.bytes;
      if (f.oldest === null || r.time < f.oldest) f.oldest = r.time;
      perFlavor.set(r.flavor, f);
    }
    segments.push({ name, firstSeq, lastSeq: last, bytes: end, unacked: unacked.length, oldest: unacked[0]!.time });
  }
  if (ledger !== 'ok' && segments.length > 0) acked = segments[0]!.firstSeq - 1;
  return { segments, acked, lastSeq, ledger, quarantined, problems, perFlavor };
}
