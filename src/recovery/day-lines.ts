/**
 * The Lines of a flavor's day files that a time range covers, read through
 * the sparse index beside each file (src/file/day-index.ts), for replay.
 * An index is checked to be the file's own before any Line is taken from
 * it: offsets that grow and stay inside the file, and each range beginning a
 * Line (a .log moved in beside an older .idx would otherwise send fragments).
 */
import { closeSync, createReadStream, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { dayOf, dayStart } from '../day.js';
import type { Flavor } from '../flavor.js';
import { dayPaths, flavorDir, type DayNames } from '../file/paths.js';
import { byteRanges, indexMismatch, readIndex, type ByteRange, type IndexEntry } from '../file/day-index.js';
import { CommandError } from './command-error.js';

/** One day file's part of the range. */
export interface Part {
  day: string;
  path: string;
  idx: string;
  gz: boolean;
  entries: IndexEntry[];
  /** Timestamp of the Lines when the index has no entry: the first instant of the day. */
  unknown: number;
  ranges: ByteRange[];
}

export interface FileLine {
  json: Buffer;
  /** Byte offsets [start, end) in the (uncompressed) day file, the newline included. */
  start: number;
  end: number;
}

/**
 * The parts of the flavor's day files under `root` (backends.file.dir)
 * that hold the Lines of [from, to]; `note` hears of a file taken whole for want of an index.
 */
export async function planParts(
  root: string, flavor: Flavor, from: number, to: number, names: DayNames, note: (text: string) => void,
): Promise<Part[]> {
  const parts: Part[] = [];
  for (const day of daysIn(flavorDir(root, flavor.name), flavor, from, to, names)) {
    const paths = dayPaths(root, flavor.name, day, names);
    // The plain file while it exists: compression removes it only once the .gz is complete.
    const path = existsSync(paths.log) ? paths.log : paths.gz;
    const idx = paths.idx;
    const entries = (await readIndex(idx)) ?? [];
    if (entries.length === 0) note(`${idx} is empty or missing: all of ${path} is taken, its Lines stamped with the first instant of ${day}`);
    const gz = path.endsWith('.gz');
    // The size after the index was read: every entry points at bytes written
    // before it. A live file grows while we read; the rest is not indexed yet.
    const size = gz ? Infinity : statSync(path).size;
    const mismatch = indexMismatch(entries, size);
    if (mismatch !== null) throw new CommandError(notItsIndex(idx, path, mismatch));
    const ranges = byteRanges(entries, from, to, size);
    if (!gz) checkLineStarts(path, idx, ranges);
    if (ranges.length > 0) parts.push({ day, path, idx, gz, entries, unknown: dayStart(day, flavor.timeZone), ranges });
  }
  return parts;
}

/**
 * The days of the flavor's day files within [from, to], in order. Listed
 * from the directory, not counted: a range may span centuries. A Line is in
 * the file of the day it arrived, or (written late) of a later day, never
 * after the day it was written: the days of the range hold every Line the
 * index finds in it.
 */
function daysIn(dir: string, flavor: Flavor, from: number, to: number, names: DayNames): string[] {
  const first = dayOf(from, flavor.timeZone);
  const last = dayOf(to, flavor.timeZone);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const days = new Set<string>();
  for (const f of files) {
    const m = names.parse(flavor.name, f);
    if (m !== null && (m.suffix === '' || m.suffix === '.gz') && m.day >= first && m.day <= last) days.add(m.day);
  }
  return [...days].sort();
}

function notItsIndex(idx: string, path: string, why: string): string {
  return `${idx} is not the index of ${path} (${why}): put the file's own .idx beside it, or remove this one to take the whole file`;
}

/** Each range of a plain file must begin a Line. */
function checkLineStarts(path: string, idx: string, ranges: readonly ByteRange[]): void {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    for (const r of ranges) {
      if (r.start > 0 && (readSync(fd, b, 0, 1, r.start - 1) !== 1 || b[0] !== 10)) {
        throw new CommandError(notItsIndex(idx, path, `byte ${r.start} does not begin a Line`));
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The Lines of a part that begin in its ranges (or in `only`, sorted), from
 * byte `from` on, in file order. A plain file is read range by range; a .gz
 * from its beginning, each index entry met checked to begin a Line.
 */
export async function* linesOf(part: Part, from: number, only?: readonly ByteRange[]): AsyncGenerator<FileLine> {
  const ranges = (only ?? part.ranges).filter((r) => r.end > from);
  if (ranges.length === 0) return;
  if (!part.gz) {
    for (const range of ranges) {
      const start = Math.max(range.start, from);
      yield* split(createReadStream(part.path, { start, end: range.end - 1 }), start);
    }
    return;
  }
  let r = 0;
  let e = 0;
  for await (const line of split(createReadStream(part.path).pipe(createGunzip()), 0)) {
    const entry = part.entries[e];
    if (entry !== undefined && entry.offset < line.start) {
      throw new CommandError(notItsIndex(part.idx, part.path, `entry ${e} points into a Line, at byte ${entry.offset}`));
    }
    if (entry?.offset === line.start) e++;
    while (r < ranges.length && ranges[r]!.end <= line.start) r++;
    if (r === ranges.length) return;
    if (line.start >= ranges[r]!.start && line.start >= from) yield line;
  }
}

/**
 * The newline-ended Lines of a stream whose first byte, at file offset `at`,
 * begins a Line. A Line without its newline at the end is being written
 * right now: not ours yet.
 */
async function* split(stream: NodeJS.ReadableStream & { destroy(): void }, at: number): AsyncGenerator<FileLine> {
  let buf: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let i = 0;
      for (let nl = buf.indexOf(10, i); nl >= 0; nl = buf.indexOf(10, i)) {
        yield { json: buf.subarray(i, nl), start: at + i, end: at + nl + 1 };
        i = nl + 1;
      }
      buf = buf.subarray(i);
      at += i;
    }
  } finally {
    stream.destroy();
  }
}
