import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlib } from 'node:zlib';
import { syncDir } from '../atomic-write.js';
import { readManifest, writeManifest } from './manifest.js';
import type { DayPaths } from './paths.js';
import { dirname, basename } from 'node:path';

/** `backends.file.compress`. Node 20's zlib has no zstd (it arrived in Node 22.15/23.8), so gzip is the one on offer. */
export type Compression = 'none' | 'gzip';

/**
 * Compress a sealed day: the plain file through zlib's gzip stream (the
 * deflating runs on libuv's thread pool, not on the thread that serves
 * requests) into `<name>.log.gz.tmp`, fsynced, renamed to `<name>.log.gz`; the
 * manifest gains `compressed` (file, bytes, sha256 of the .gz); only then is
 * the plain file removed. A crash at any point leaves either the plain file
 * with its manifest, or both files: start-up removes a leftover temp file, and
 * a `.gz` the manifest does not name, and compresses again.
 */
export async function compressDay(paths: DayPaths, signal: AbortSignal): Promise<{ bytes: number } | null> {
  const manifest = await readManifest(paths.done);
  if (manifest === null) return null;
  const hash = createHash('sha256');
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const out = createWriteStream(paths.gzTemp, { mode: 0o640 });
  try {
    await pipeline(createReadStream(paths.log), createGzip({ level: zlib.Z_DEFAULT_COMPRESSION }), count, out, { signal });
    const fd = await fs.open(paths.gzTemp, 'r+');
    await fd.sync().finally(() => fd.close());
  } catch (err) {
    await fs.rm(paths.gzTemp, { force: true });
    throw err;
  }
  await fs.rename(paths.gzTemp, paths.gz);
  await syncDir(dirname(paths.gz));
  await writeManifest(paths.done, { ...manifest, compressed: { file: basename(paths.gz), bytes, sha256: hash.digest('hex') } });
  await fs.rm(paths.log, { force: true });
  await syncDir(dirname(paths.log));
  return { bytes };
}
