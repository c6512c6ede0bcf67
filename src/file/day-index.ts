/**
 * The sparse index beside a day file (`<flavor>-<day>.log.idx`): a sequence
 * of 16-byte entries, one per write batch, each
 * `[int64 LE index time (ms) of the batch][int64 LE byte offset where the
 * batch starts in the uncompressed day file]`. Append-only; a trailing
 * partial entry (a crash mid-append) is ignored.
 *
 * The index time (`indexTime`) is the arrival time of the batch's first Line,
 * raised to the latest arrival written before the batch when that is later.
 * Lines are written in the order they are made, and a Line made at once (a
 * GET) arrives no earlier than any Line written before it; a POST's Line
 * carries the time its headers arrived but is made when its body completes,
 * so a batch it opens would otherwise step back in time and hide the Lines
 * written just before it from a reader of the index. Raised, the times never
 * step back while the clock does not: every Line before an entry arrived at
 * or before its time, and every Line made at once after it arrived at or after
 * it. A Line written later than it arrived (a slow POST body, a Line a
 * serving thread relayed behind Lines other threads answered after it, a Line of a
 * sealed day written into a later day's file) sits where it was written, so
 * a reader finds it by the time it was written. A clock step back shows as a
 * step back in the index, which `byteRanges` allows for.
 */
import { promises as fs } from 'node:fs';

export const ENTRY_BYTES = 16;

export interface IndexEntry {
  /** Arrival time of the batch's first Line, ms since the epoch. */
  readonly time: number;
  /** Where the batch starts in the uncompressed day file. */
  readonly offset: number;
}

/**
 * The index time of a batch: `firstArrival`, the arrival time of its first
 * Line, or `writtenBefore`, the latest arrival time among the Lines written
 * to the file before it, when that is later.
 */
export function indexTime(firstArrival: number, writtenBefore: number): number {
  return Math.max(firstArrival, writtenBefore);
}

/** One entry's bytes, into `buf` (reused per writer: one small write per batch). */
export function encodeEntry(buf: Buffer, time: number, offset: number): Buffer {
  buf.writeBigInt64LE(BigInt(time), 0);
  buf.writeBigInt64LE(BigInt(offset), 8);
  return buf;
}

/** The entry at byte `at` of `buf`. */
export function decodeEntry(buf: Buffer, at = 0): IndexEntry {
  return { time: Number(buf.readBigInt64LE(at)), offset: Number(buf.readBigInt64LE(at + 8)) };
}

/** The bytes of one or more entries, to append to the index. */
export function encodeEntries(entries: readonly IndexEntry[]): Buffer {
  const buf = Buffer.alloc(entries.length * ENTRY_BYTES);
  entries.forEach((e, i) => {
    buf.writeBigInt64LE(BigInt(e.time), i * ENTRY_BYTES);
    buf.writeBigInt64LE(BigInt(e.offset), i * ENTRY_BYTES + 8);
  });
  return buf;
}

/** The entries in `buf`; a trailing partial entry is ignored. */
export function decodeEntries(buf: Buffer): IndexEntry[] {
  const n = Math.floor(buf.length / ENTRY_BYTES);
  const out: IndexEntry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = decodeEntry(buf, i * ENTRY_BYTES);
  }
  return out;
}

/** The index at `path`, or null when there is none. */
export async function readIndex(path: string): Promise<IndexEntry[] | null> {
  try {
    return decodeEntries(await fs.readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Append entries to the index at `path` (created if absent). */
export async function appendIndex(path: string, entries: readonly IndexEntry[]): Promise<void> {
  if (entries.length > 0) await fs.appendFile(path, encodeEntries(entries), { mode: 0o640 });
}

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The byte ranges of the day file, in file order, that hold every Line that
 * arrived in [from, to] (ms, inclusive) and was written when it arrived,
 * plus whole write batches of other Lines around them. Batch i holds Lines
 * that arrived between its time and the next entry's; the batch before a
 * step back in time, and the last one, have no upper bound; the bytes before
 * the first entry (its entries lost to failed index writes) have no lower
 * bound. A batch whose span meets [from, to] is taken. With times that never
 * step back, that is one range: from the last batch that began before `from`
 * (a batch that began in the same millisecond as `from` may follow one that
 * holds Lines of that millisecond too) to where the first batch that began
 * after `to` starts. `size` is the file's (uncompressed) length, the end of
 * the last batch.
 */
export function byteRanges(entries: readonly IndexEntry[], from: number, to: number, size: number): ByteRange[] {
  const out: ByteRange[] = [];
  const take = (start: number, end: number): void => {
    end = Math.min(end, size);
    if (start >= end) return;
    const last = out[out.length - 1];
    if (last !== undefined && last.end === start) last.end = end;
    else out.push({ start, end });
  };
  const first = entries[0];
  if (first === undefined || first.offset > 0) {
    if ((first?.time ?? Infinity) >= from) take(0, first?.offset ?? size);
  }
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const next = entries[i + 1];
    const upTo = next !== undefined && next.time >= e.time ? next.time : Infinity;
    if (e.time <= to && upTo >= from) take(e.offset, next?.offset ?? size);
  }
  return out;
}

/**
 * Why the index cannot be the one of a day file of `size` bytes (Infinity:
 * not known yet, a .gz), or null: its offsets must grow and stay inside the
 * file. That each one starts a Line is checked as the file is read.
 */
export function indexMismatch(entries: readonly IndexEntry[], size: number): string | null {
  for (let i = 0; i < entries.length; i++) {
    const { offset } = entries[i]!;
    if (offset < 0 || offset >= size) return `entry ${i} points at byte ${offset}, outside the file (${size} bytes)`;
    if (i > 0 && offset <= entries[i - 1]!.offset) return `entry ${i} points at byte ${offset}, not after entry ${i - 1}'s`;
  }
  return null;
}

/**
 * The timestamp to give the Line at `offset`: its batch's index time. Lines
 * before the first entry get the first entry's time (they arrived no later),
 * or `unknown` when the index has no entry at all.
 */
export function batchTimes(entries: readonly IndexEntry[], unknown: number): (offset: number) => number {
  let i = 0;
  // Offsets asked for only ever grow (a file is read front to back).
  return (offset) => {
    while (i + 1 < entries.length && entries[i + 1]!.offset <= offset) i++;
    return entries[i]?.time ?? unknown;
  };
}

/** The first and last whole entries of an index file; null when it has none or is missing. */
export async function indexEnds(path: string): Promise<{ first: IndexEntry; last: IndexEntry } | null> {
  let fd: fs.FileHandle;
  try {
    fd = await fs.open(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = (await fd.stat()).size;
    const whole = size - (size % ENTRY_BYTES);
    if (whole === 0) return null;
    const buf = Buffer.alloc(ENTRY_BYTES);
    await fd.read(buf, 0, ENTRY_BYTES, 0);
    const first = decodeEntry(buf);
    await fd.read(buf, 0, ENTRY_BYTES, whole - ENTRY_BYTES);
    return { first, last: decodeEntry(buf) };
  } finally {
    await fd.close();
  }
}

/**
 * Make an index opened for appending fit its day file of `logSize` bytes:
 * drop a trailing partial entry (a crash mid-write; appending after it would
 * shift every later entry), and empty it when its last entry points past the
 * file (the file was rotated away or truncated: the entries describe another
 * file). Returns the index's size afterwards.
 */
export async function repairIndex(fd: fs.FileHandle, logSize: number): Promise<number> {
  const size = (await fd.stat()).size;
  let whole = size - (size % ENTRY_BYTES);
  if (whole > 0) {
    const buf = Buffer.alloc(ENTRY_BYTES);
    await fd.read(buf, 0, ENTRY_BYTES, whole - ENTRY_BYTES);
    // A batch that starts at X has at least one byte: X < logSize.
    if (decodeEntry(buf).offset >= logSize) whole = 0;
  }
  if (whole !== size) await fd.truncate(whole);
  return whole;
}
