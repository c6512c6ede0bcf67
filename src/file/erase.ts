/**
 * Erasure in a sealed day (`scratchd erase`): the day rewritten without the
 * Lines whose top-level `field` equals `value`, its manifest and index made
 * anew, the new files put in place of the old ones so that a crash at any
 * point leaves one day or the other whole.
 *
 * The steps, for `<flavor>-<day>.log[.gz]`:
 *   1. the kept Lines into `<log>.erase.tmp` (plain), counted and hashed, and
 *      for a compressed day gzipped into `<gz>.erase.tmp`; the index and the
 *      manifest into `<idx>.erase.tmp` and `<done>.erase.tmp`; all fsynced.
 *   2. the journal `<log>.erasing`, written atomically: the renames to make. It
 *      is the commit point: before it, the old day is whole and the temp files
 *      are leftovers; after it, the renames are made, now or by the next run.
 *   3. the renames, the directory fsynced, the journal removed.
 * `recoverErasures()` finishes step 3 for every journal it finds and removes
 * leftover temp files without one: `scratchd erase` runs it first.
 *
 * The Lines stream through; nothing holds a whole day.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { decodeEntries, encodeEntries, type IndexEntry } from './day-index.js';
import { syncDir, writeFileAtomic, writeFileSynced } from '../atomic-write.js';
import { readManifest, type Manifest } from './manifest.js';
import type { DayPaths } from './paths.js';

export interface Erased {
  /** Lines read, and erased. */
  lines: number;
  erased: number;
}

const TEMP = '.erase.tmp';
const JOURNAL = '.erasing';

/** Does this Line's top-level `field` equal `value`? A Line that is no JSON object never matches. */
function matches(line: Buffer, field: string, value: string): boolean {
  try {
    const v = JSON.parse(line.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) && (v as Record<string, unknown>)[field] === value;
  } catch {
    return false;
  }
}

/**
 * The Lines of a stream as their exact bytes, each with its LF (the last one
 * without, if the file has none). Not readline: it also splits at a lone CR,
 * drops the CR of CRLF, decodes as UTF-8 and adds a final newline, and the
 * kept Lines must keep every byte.
 */
async function* linesOf(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // A Line's pieces from earlier chunks: joined once, so a huge Line is copied once.
  let parts: Buffer[] = [];
  for await (const chunk of source) {
    let from = 0;
    let nl = chunk.indexOf(10);
    while (nl !== -1) {
      const piece = chunk.subarray(from, nl + 1);
      yield parts.length === 0 ? piece : Buffer.concat([...parts, piece]);
      parts = [];
      from = nl + 1;
      nl = chunk.indexOf(10, from);
    }
    if (from < chunk.length) parts.push(chunk.subarray(from));
  }
  if (parts.length > 0) yield Buffer.concat(parts);
}

async function syncFile(path: string): Promise<void> {
  const fd = await fs.open(path, 'r+');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** The streaming pass: the kept Lines written (unless a dry run), and where every Line was. */
interface Pass extends Erased {
  /** sha256 of the kept Lines. */
  sha256: string;
  /** Bytes read, and erased. */
  bytes: number;
  gone: number;
  /** Where each Line started, and the bytes erased before it: to move the index. */
  starts: number[];
  removed: number[];
}

/** Read the day, writing the Lines that do not match to `out` (null: count only). */
async function keepLines(source: AsyncIterable<Buffer>, out: fs.FileHandle | null, field: string, value: string,
  onLines?: (n: number) => void): Promise<Pass> {
  const hash = createHash('sha256');
  const pass: Pass = { lines: 0, erased: 0, sha256: '', bytes: 0, gone: 0, starts: [], removed: [] };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async (): Promise<void> => {
    if (out !== null && pending.length > 0) await out.write(Buffer.concat(pending, pendingBytes));
    pending = [];
    pendingBytes = 0;
  };
  for await (const bytes of linesOf(source)) {
    pass.starts.push(pass.bytes);
    pass.removed.push(pass.gone);
    pass.bytes += bytes.length;
    pass.lines++;
    if (matches(bytes, field, value)) {
      pass.gone += bytes.length;
      pass.erased++;
    } else {
      hash.update(bytes);
      pending.push(bytes);
      pendingBytes += bytes.length;
      if (pendingBytes >= 1 << 16) await flush();
    }
    if (pass.lines % 10_000 === 0) onLines?.(pass.lines);
  }
  await flush();
  if (out !== null) await out.sync();
  pass.sha256 = hash.digest('hex');
  return pass;
}

/**
 * Erase from one sealed day. `dryRun` counts without writing. `onLine` is
 * called every so many Lines (a progress bar). Throws when the day is not
 * sealed.
 */
export async function eraseDay(
  paths: DayPaths, field: string, value: string, opts: { dryRun?: boolean; now?: number; onLines?: (n: number) => void } = {},
): Promise<Erased> {
  const manifest = await readManifest(paths.done);
  if (manifest === null) throw new Error(`${basename(paths.log)}: not sealed (no manifest)`);
  const source = manifest.compressed !== undefined ? createReadStream(paths.gz).pipe(createGunzip()) : createReadStream(paths.log);
  const plainTemp = paths.log + TEMP;
  const out = opts.dryRun ? null : await fs.open(plainTemp, 'w', 0o640);
  let pass: Pass;
  try {
    pass = await keepLines(source, out, field, value, opts.onLines);
  } finally {
    await out?.close();
  }
  opts.onLines?.(pass.lines);
  const result: Erased = { lines: pass.lines, erased: pass.erased };
  if (opts.dryRun || pass.erased === 0) {
    if (!opts.dryRun) await fs.rm(plainTemp, { force: true });
    return result;
  }
  await replaceDay(paths, manifest, pass, opts.now ?? Date.now());
  return result;
}

/** The kept Lines (in `<log>.erase.tmp`) gzipped into `<gz>.erase.tmp`: its size and hash for the manifest. */
async function gzipKept(paths: DayPaths): Promise<NonNullable<Manifest['compressed']>> {
  const gzTemp = paths.gz + TEMP;
  const gzHash = createHash('sha256');
  let gzBytes = 0;
  const gz = createGzip();
  gz.on('data', (c: Buffer) => { gzHash.update(c); gzBytes += c.length; });
  await pipeline(createReadStream(paths.log + TEMP), gz, createWriteStream(gzTemp, { mode: 0o640 }));
  await syncFile(gzTemp);
  return { file: basename(paths.gz), bytes: gzBytes, sha256: gzHash.digest('hex') };
}

/** Steps 1 (the rest) to 3: the new day's files beside the old ones, the journal, the renames. */
async function replaceDay(paths: DayPaths, manifest: Manifest, pass: Pass, now: number): Promise<void> {
  const compressed = manifest.compressed !== undefined;
  const plainTemp = paths.log + TEMP;
  const renames: [string, string][] = [];
  const newBytes = pass.bytes - pass.gone;
  let next: Manifest = {
    ...manifest, lines: pass.lines - pass.erased, bytes: newBytes, sha256: pass.sha256,
    erased: { count: (manifest.erased?.count ?? 0) + pass.erased, at: new Date(now).toISOString() },
  };
  if (compressed) {
    next = { ...next, compressed: await gzipKept(paths) };
    renames.push([paths.gz + TEMP, paths.gz]);
  } else {
    renames.push([plainTemp, paths.log]);
  }
  const index = await fs.readFile(paths.idx).catch(() => null);
  if (index !== null) {
    await writeFileSynced(paths.idx + TEMP, encodeEntries(movedIndex(decodeEntries(index), pass.starts, pass.removed, newBytes)));
    renames.push([paths.idx + TEMP, paths.idx]);
  }
  await writeFileSynced(paths.done + TEMP, Buffer.from(`${JSON.stringify(next)}\n`));
  renames.push([paths.done + TEMP, paths.done]);
  await syncDir(dirname(paths.log));
  // The commit point.
  await writeFileAtomic(paths.log + JOURNAL, Buffer.from(`${JSON.stringify({ renames, remove: compressed ? [plainTemp] : [] })}\n`));
  await finishJournal(paths.log + JOURNAL);
}

/** Index entries moved to the rewritten file: an entry on an erased Line points at the next kept one. */
function movedIndex(entries: readonly IndexEntry[], starts: readonly number[], removed: readonly number[], size: number): IndexEntry[] {
  const out: IndexEntry[] = [];
  let i = 0;
  for (const e of entries) {
    while (i < starts.length && starts[i]! < e.offset) i++;
    if (i >= starts.length || starts[i] !== e.offset) continue; // not at a Line start: a stale entry, dropped
    const moved = e.offset - removed[i]!;
    if (moved >= size || (out.length > 0 && out[out.length - 1]!.offset === moved)) continue;
    out.push({ time: e.time, offset: moved });
  }
  return out;
}

/** Make a journal's renames (those not made yet), remove what it says, then the journal. */
async function finishJournal(journal: string): Promise<void> {
  const { renames, remove } = JSON.parse(await fs.readFile(journal, 'utf8')) as { renames: [string, string][]; remove: string[] };
  for (const [from, to] of renames) {
    await fs.rename(from, to).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err; // made before a crash
    });
  }
  for (const p of remove) await fs.rm(p, { force: true });
  await syncDir(dirname(journal));
  await fs.rm(journal);
  await syncDir(dirname(journal));
}

/**
 * After a crash: every journal in `flavorDir` finished, every temp file
 * without a journal removed. Returns the journals finished.
 */
export async function recoverErasures(flavorDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(flavorDir);
  } catch {
    return [];
  }
  const finished: string[] = [];
  for (const n of names.filter((x) => x.endsWith(JOURNAL))) {
    await finishJournal(join(flavorDir, n));
    finished.push(n);
  }
  const left = await fs.readdir(flavorDir);
  for (const n of left.filter((x) => x.endsWith(TEMP) || x.endsWith(`${JOURNAL}.tmp`))) await fs.rm(join(flavorDir, n), { force: true });
  return finished;
}
