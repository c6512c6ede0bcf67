/**
 * The sealed-day manifest (`<flavor>-<day>.log.done`): one JSON line saying
 * what the day file holds, written atomically (temp file, fsync, rename,
 * fsync of the directory) so a reader finds the old state or the new one.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export interface DayManifest {
  flavor: string;
  day: string;
  lines: number;
  bytes: number;
  /** Hex SHA-256 of the plain day file. */
  sha256: string;
  /** Arrival times, ISO 8601 UTC; null when the day has no Lines. */
  firstTime: string | null;
  lastTime: string | null;
  version: string;
}

export function manifest(m: Omit<DayManifest, 'version'>): DayManifest {
  return { ...m, version };
}

/** Write `data` to `path` so that it is there whole or not at all. */
export function writeAtomically(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o640);
  try {
    if (typeof data === 'string') writeSync(fd, data);
    else writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export function writeManifest(path: string, m: DayManifest): void {
  writeAtomically(path, JSON.stringify(m) + '\n');
}
