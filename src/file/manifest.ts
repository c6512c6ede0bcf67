import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-write.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * The sealed-day manifest, `<flavor>-<day>.log.done`: one JSON object on one
 * line. Its existence says the day is complete; batch jobs wait for it.
 * Fields and order fixed in helpers-interfaces.md (`scratchd rebuild` writes
 * the same object).
 */
export interface Manifest {
  flavor: string;
  day: string;
  /** The instance that wrote the day (config `instance`); absent in manifests of older versions. */
  instance?: string;
  lines: number;
  bytes: number;
  /** Hex SHA-256 of the plain (uncompressed) day file. */
  sha256: string;
  /** Arrival times, ISO 8601 UTC; null when the day has no Lines. */
  firstTime: string | null;
  lastTime: string | null;
  version: string;
  compressed?: { file: string; bytes: number; sha256: string };
  /** Lines `scratchd erase` removed from the day, in all, and when it last did. */
  erased?: { count: number; at: string };
}

/**
 * Lines (newlines), bytes and SHA-256 of a file, read as a stream. Hashing
 * runs on the serving thread, one 64 KiB chunk at a time between requests:
 * small chunks keep each slice short.
 */
export async function digestFile(path: string): Promise<{ lines: number; bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let lines = 0;
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  }
  return { lines, bytes, sha256: hash.digest('hex') };
}

export function makeManifest(
  flavor: string, day: string, digest: { lines: number; bytes: number; sha256: string },
  firstTime: number | null, lastTime: number | null, instance: string,
): Manifest {
  const iso = (t: number | null) => (t === null || digest.lines === 0 ? null : new Date(t).toISOString());
  return { flavor, day, instance, lines: digest.lines, bytes: digest.bytes, sha256: digest.sha256, firstTime: iso(firstTime), lastTime: iso(lastTime), version };
}

export async function readManifest(path: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await fs.readFile(path, 'utf8')) as Manifest;
  } catch {
    return null;
  }
}

/** Write `manifest` to `path` atomically (atomic-write.ts). */
export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(path, Buffer.from(`${JSON.stringify(manifest)}\n`));
}

