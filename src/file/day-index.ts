/**
 * The sparse index beside a day file (`<flavor>-<day>.log.idx`): a sequence
 * of 16-byte entries, one per write batch, each
 * `[int64 LE arrival time (ms) of the batch's first Line][int64 LE byte offset
 * where the batch starts in the uncompressed day file]`. Append-only; a
 * trailing partial entry (a crash mid-append) is ignored.
 */
import { promises as fs } from 'node:fs';

export const ENTRY_BYTES = 16;

export interface IndexEntry {
  /** Arrival time of the batch's first Line, ms since the epoch. */
  readonly time: number;
  /** Where the batch starts in the uncompressed day file. */
  readonly offset: number;
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

/**
 * The byte range [start, end) of the day file that holds every Line that
 * arrived in [from, to] (ms, inclusive), plus at most one write batch of
 * other Lines at each end. It starts at the last batch that began before
 * `from` (a batch that began in the same millisecond as `from` may follow
 * one that holds Lines of that millisecond too, so `<` rather than `<=`),
 * and ends where the first batch that began after `to` starts. `size` is the
 * file's (uncompressed) length, the end when no batch began after `to`.
 */
export function byteRange(entries: readonly IndexEntry[], from: number, to: number, size: number): { start: number; end: number } {
  let start = 0;
  let end = size;
  for (const e of entries) {
    if (e.time < from) start = e.offset;
    else if (e.time > to) {
      end = Math.min(e.offset, size);
      break;
    }
  }
  return { start: Math.min(start, end), end };
}

/** The arrival time to give the Line at `offset`: its batch's first Line's time. */
export function batchTimes(entries: readonly IndexEntry[]): (offset: number) => number {
  let i = 0;
  // Offsets asked for only ever grow (a file is read front to back).
  return (offset) => {
    while (i + 1 < entries.length && entries[i + 1]!.offset <= offset) i++;
    return entries[i]?.time ?? 0;
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
