import { promises as fs } from 'node:fs';

/**
 * The sparse index beside a day file (`<flavor>-<day>.log.idx`): one 16-byte
 * entry per write batch, `[int64 LE arrival time of the batch's first Line (ms)]
 * [int64 LE byte offset where the batch starts]`, appended right after the
 * batch's bytes are written, so an entry never points past data that exists.
 * Format fixed in helpers-interfaces.md (replay reads it).
 */
export const ENTRY_BYTES = 16;

export interface IndexEntry {
  time: number;
  offset: number;
}

/** One entry's bytes, into `buf` (reused per writer: one small write per batch). */
export function encodeEntry(buf: Buffer, time: number, offset: number): Buffer {
  buf.writeBigInt64LE(BigInt(time), 0);
  buf.writeBigInt64LE(BigInt(offset), 8);
  return buf;
}

export function decodeEntry(buf: Buffer, at = 0): IndexEntry {
  return { time: Number(buf.readBigInt64LE(at)), offset: Number(buf.readBigInt64LE(at + 8)) };
}

/** Whole entries of an index file held in memory (tests, manifests of small files). */
export function decodeIndex(buf: Buffer): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (let at = 0; at + ENTRY_BYTES <= buf.length; at += ENTRY_BYTES) out.push(decodeEntry(buf, at));
  return out;
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
