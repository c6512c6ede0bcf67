/**
 * One spooled Line on disk, a framed record:
 *
 *   u32 LE  body length (bytes after this 8-byte header)
 *   u32 LE  CRC-32 of the body (zlib's crc32; CRC-32C in spools written
 *           before it, still read)
 *   body:
 *     u64 LE  sequence (global, increasing; never reused, see ledger.ts)
 *     i64 LE  arrival time, ms since the epoch (the Kafka timestamp)
 *     u8      flavor name length, then the name's bytes (ASCII, [a-z0-9._-])
 *     ...     payload: the Line's JSON bytes exactly
 *
 * The length comes first so a reader can skip, the checksum second so a torn
 * or bit-flipped record is told apart from a good one. The checksum is
 * zlib's crc32, native in Node (20.15+): the spool runs on the serving
 * thread, where a table-driven CRC in JavaScript costs too much of it while
 * spilling or draining. @aws-crypto/crc32c stays only to read records that
 * carry CRC-32C.
 */
import { crc32 } from 'node:zlib';
import { crc32c } from '@aws-crypto/crc32c';

export const HEADER_BYTES = 8;
const FIXED_BODY_BYTES = 8 + 8 + 1;
/** Longer bodies are taken as a corrupt length, not a record. */
export const MAX_BODY_BYTES = 64 << 20;

export interface SpoolRecord {
  seq: number;
  time: number;
  flavor: string;
  payload: Buffer;
}

/** The record's frame, ready to append. */
export function encodeRecord(r: SpoolRecord): Buffer {
  const flavorLen = Buffer.byteLength(r.flavor, 'latin1');
  const body = FIXED_BODY_BYTES + flavorLen + r.payload.length;
  const buf = Buffer.allocUnsafe(HEADER_BYTES + body);
  buf.writeUInt32LE(body, 0);
  writeU64(buf, r.seq, 8);
  writeU64(buf, r.time, 16);
  buf.writeUInt8(flavorLen, 24);
  buf.write(r.flavor, 25, 'latin1');
  r.payload.copy(buf, 25 + flavorLen);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_BYTES)), 4);
  return buf;
}

// Sequences and arrival times are non-negative integers below 2^53: two
// u32 halves are the u64 LE / i64 LE the format names, without a BigInt
// per field.
function writeU64(buf: Buffer, n: number, at: number): void {
  buf.writeUInt32LE(n % 0x1_0000_0000, at);
  buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), at + 4);
}

export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x1_0000_0000;
}

function intact(body: Buffer, sum: number): boolean {
  return crc32(body) === sum || crc32c(body) === sum;
}

/** Why decoding stopped before the end of the bytes given. */
export type FrameProblem = 'truncated' | 'length' | 'checksum';

export interface Decoded {
  records: (SpoolRecord & { offset: number; bytes: number })[];
  /** Offset just past the last good record. */
  end: number;
  /** null when every byte up to the end was good records. */
  problem: FrameProblem | null;
}

/**
 * Every whole, intact record in `buf` from `start`, stopping at the first
 * that is not (a partial record at the end is `truncated`: more bytes may
 * still come, or a crash cut it). Payloads are views into `buf`, not copies:
 * `buf` lives as long as one of them.
 */
export function decodeRecords(buf: Buffer, start = 0, limit = Infinity): Decoded {
  const records: Decoded['records'] = [];
  let at = start;
  while (at < buf.length && records.length < limit) {
    if (buf.length - at < HEADER_BYTES) return { records, end: at, problem: 'truncated' };
    const body = buf.readUInt32LE(at);
    if (body < FIXED_BODY_BYTES || body > MAX_BODY_BYTES) return { records, end: at, problem: 'length' };
    if (buf.length - at - HEADER_BYTES < body) return { records, end: at, problem: 'truncated' };
    const b = buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + body);
    if (!intact(b, buf.readUInt32LE(at + 4))) return { records, end: at, problem: 'checksum' };
    const flavorLen = b.readUInt8(16);
    if (FIXED_BODY_BYTES + flavorLen > body) return { records, end: at, problem: 'length' };
    records.push({
      seq: readU64(b, 0),
      time: readU64(b, 8),
      flavor: b.toString('latin1', 17, 17 + flavorLen),
      payload: b.subarray(17 + flavorLen),
      offset: at,
      bytes: HEADER_BYTES + body,
    });
    at += HEADER_BYTES + body;
  }
  return { records, end: at, problem: null };
}

/**
 * The offset of the next intact record at or after `from` whose sequence is
 * above `afterSeq`, or -1: after a damaged length field the framing is lost,
 * and this finds it again. Cheap tests (a plausible length, a sequence in
 * order) come before the checksum, so a scan over garbage costs little.
 */
export function findNextRecord(buf: Buffer, from: number, afterSeq: number): number {
  for (let at = from; at + HEADER_BYTES + FIXED_BODY_BYTES <= buf.length; at++) {
    const body = buf.readUInt32LE(at);
    if (body < FIXED_BODY_BYTES || body > buf.length - at - HEADER_BYTES) continue;
    const seq = readU64(buf, at + HEADER_BYTES);
    if (seq <= afterSeq || seq > Number.MAX_SAFE_INTEGER) continue;
    if (FIXED_BODY_BYTES + buf.readUInt8(at + HEADER_BYTES + 16) > body) continue;
    if (intact(buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + body), buf.readUInt32LE(at + 4))) return at;
  }
  return -1;
}
