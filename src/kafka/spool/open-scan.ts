/**
 * Opening a spool directory after any kind of stop: read the ledger, scan
 * every segment, cut each at its first bad record (the cut bytes are kept
 * under quarantine/ for a human, and counted), quarantine segments that
 * cannot be read at all, and delete segments the ledger says are delivered.
 * `readOnly` (for `scratchd spool`) reports the same without changing a byte.
 */
import { mkdir, open, readFile, readdir, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from '../../atomic-write.js';
import { readLedger } from './ledger.js';
import { decodeRecords, findNextRecord, HEADER_BYTES, type Decoded, type FrameProblem } from './record.js';
import { QUARANTINE, SEGMENT_SUFFIX, segmentSeq, type SegmentInfo } from './segment.js';

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
  /** Segments moved to quarantine/ whole, and damaged ranges (records, runs of them, torn tails) cut out into it. */
  quarantined: number;
  /** What was found wrong, one line each (logged). */
  problems: string[];
  perFlavor: Map<string, FlavorState>;
}

/** Decode this many records, then let the event loop serve (recovery runs beside serving). */
const DECODE_SLICE = 4096;

async function decodeYielding(buf: Buffer, from: number): Promise<Decoded> {
  const records: Decoded['records'] = [];
  let at = from;
  for (;;) {
    const d = decodeRecords(buf, at, DECODE_SLICE);
    records.push(...d.records);
    at = d.end;
    if (d.problem !== null || at >= buf.length) return { records, end: at, problem: d.problem };
    await new Promise((r) => setImmediate(r));
  }
}

interface Scanned {
  records: Decoded['records'];
  /** Byte ranges that are not intact records in sequence, in order. */
  damaged: { from: number; to: number; problem: FrameProblem | 'sequence' }[];
}

/**
 * Every intact record of a segment, in sequence, and the damaged ranges
 * between them: a bad record is skipped alone, and the scan goes on at the
 * next intact record (found again even after a damaged length field).
 */
async function scanSegment(buf: Buffer, firstSeq: number): Promise<Scanned> {
  const records: Decoded['records'] = [];
  const damaged: Scanned['damaged'] = [];
  let prev = firstSeq - 1;
  let at = 0;
  while (at < buf.length) {
    const d = await decodeYielding(buf, at);
    let stop = d.end;
    // A record out of sequence is as bad as a bad checksum. (Sequences may
    // skip: Lines dropped by a failed write keep theirs.)
    let problem: FrameProblem | 'sequence' | null = d.problem;
    for (const r of d.records) {
      if (r.seq <= prev) {
        stop = r.offset;
        problem = 'sequence';
        break;
      }
      records.push(r);
      prev = r.seq;
    }
    if (problem === null) break;
    // A bad checksum under an intact length: the next record is right after it.
    let next = -1;
    if (problem === 'checksum') {
      const after = stop + HEADER_BYTES + buf.readUInt32LE(stop);
      const n = decodeRecords(buf, after, 1).records[0];
      if (after === buf.length || (n !== undefined && n.seq > prev)) next = after;
    }
    if (next < 0) next = findNextRecord(buf, stop + 1, prev);
    const to = next < 0 ? buf.length : next;
    damaged.push({ from: stop, to, problem });
    at = to;
  }
  return { records, damaged };
}

export async function recoverSpool(dir: string, readOnly = false): Promise<Recovered> {
  if (!readOnly) await mkdir(dir, { recursive: true, mode: 0o750 });
  const all = await readdir(dir);
  const names = all.filter((n) => segmentSeq(n) !== null).sort();
  // A rewrite (cutDamaged) a crash interrupted: the segment itself is still whole.
  if (!readOnly) for (const n of all.filter((x) => x.endsWith(`${SEGMENT_SUFFIX}.tmp`))) await unlink(join(dir, n)).catch(() => {});
  const ledgerRead = readLedger(dir);
  const ledger = typeof ledgerRead === 'string' ? ledgerRead : 'ok';
  const problems: string[] = [];
  let quarantined = 0;
  const quarantine = async (name: string, from: string): Promise<void> => {
    quarantined++;
    if (readOnly) return;
    await mkdir(join(dir, QUARANTINE), { recursive: true, mode: 0o750 });
    await rename(from, join(dir, QUARANTINE, name));
  };

  // Without a ledger, nothing is known delivered: all records are sent
  // again (duplicates, never loss).
  let acked = typeof ledgerRead === 'string' ? 0 : ledgerRead.acked;
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
    const { records, damaged } = await scanSegment(buf, firstSeq);
    for (const r of damaged) {
      problems.push(`${name}: ${r.problem} at byte ${r.from} of ${buf.length}; ${r.to - r.from} bytes cut off into ${QUARANTINE}/`);
    }
    quarantined += damaged.length;
    let bytes = buf.length;
    if (damaged.length > 0) {
      bytes = records.reduce((n, r) => n + r.bytes, 0);
      if (!readOnly) await cutDamaged(dir, name, buf, damaged, records);
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
    segments.push({ name, firstSeq, lastSeq: last, bytes, unacked: unacked.length, oldest: unacked[0]!.time });
  }
  // A spool that never held a Line has no ledger yet, and nothing to say.
  if (ledger !== 'ok' && (ledger === 'corrupt' || segments.length > 0)) {
    problems.unshift(`ledger ${ledger}: every spooled record will be sent again`);
  }
  if (ledger !== 'ok' && segments.length > 0) acked = segments[0]!.firstSeq - 1;
  return { segments, acked, lastSeq, ledger, quarantined, problems, perFlavor };
}

/**
 * Keep each damaged range under quarantine/ for a human, and leave the
 * segment with its intact records only: cut at the end (a torn tail), or
 * rewritten whole and renamed over (damage in the middle).
 */
async function cutDamaged(dir: string, name: string, buf: Buffer, damaged: Scanned['damaged'], records: Decoded['records']): Promise<void> {
  await mkdir(join(dir, QUARANTINE), { recursive: true, mode: 0o750 });
  for (const r of damaged) await writeFile(join(dir, QUARANTINE, `${name}.from-${r.from}`), buf.subarray(r.from, r.to), { mode: 0o640 });
  const path = join(dir, name);
  if (damaged.length === 1 && damaged[0]!.to === buf.length) {
    await truncate(path, damaged[0]!.from);
    return;
  }
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o640);
  try {
    await fh.writev(records.map((r) => buf.subarray(r.offset, r.offset + r.bytes)));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dir);
}
