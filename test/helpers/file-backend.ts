// The file backend in-process, for unit tests: a settable clock, a silent
// logger, Lines made by hand, and the day files read back (plain or gzip).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import type { FileConfig } from '../../src/config.js';
import type { Manifest } from '../../src/file/manifest.js';
import { FileBackend } from '../../src/file/backend.js';
import { makeFlavor, type Flavor } from '../../src/flavor.js';
import type { Line } from '../../src/line.js';

const realNow = Date.now;
let offset = 0;

/** Date.now() reads `time` from now on (and moves with real time). */
export function setClock(time: number): void {
  offset = time - realNow();
  Date.now = () => realNow() + offset;
}

export function flavor(name: string, timeZone = 'UTC', hosts = [`${name}.test`]): Flavor {
  return makeFlavor({ name, hosts, timeZone, topic: name }, null);
}

export function fileConfig(dir: string, more: Partial<FileConfig> = {}): FileConfig {
  return { enabled: true, dir, queueCapacity: 1000, queueBytes: 64 * 1024 * 1024, retryMs: 20, idleCloseMs: 1000, compress: 'none', retainDays: null, ...more };
}

export const silent = pino({ level: 'silent' });

export async function startFile(config: FileConfig, flavors: Flavor[]): Promise<FileBackend> {
  const b = new FileBackend(config, silent, flavors);
  await b.start();
  return b;
}

export function line(f: Flavor, time: number, json: string): Line {
  return { flavor: f, time, json: Buffer.from(json) };
}

export async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = realNow() + ms;
  while (!cond()) {
    if (realNow() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A flavor's day, as Lines, as a reader finds it: the .gz when the manifest
 * names one, else the plain file; [] when neither exists.
 */
export function dayText(dir: string, name: string, day: string): string[] {
  const log = join(dir, name, `${name}-${day}.log`);
  const done = existsSync(`${log}.done`) ? (JSON.parse(readFileSync(`${log}.done`, 'utf8')) as Manifest) : null;
  let text = '';
  if (done?.compressed !== undefined) text = gunzipSync(readFileSync(`${log}.gz`)).toString();
  else if (existsSync(log)) text = readFileSync(log, 'utf8');
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

/** The bytes of every file of a day (name → content), to compare before and after. */
export function dayFiles(dir: string, name: string, day: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const ext of ['', '.idx', '.done', '.gz']) {
    const p = join(dir, name, `${name}-${day}.log${ext}`);
    if (existsSync(p)) out[ext || '.log'] = readFileSync(p).toString('base64');
  }
  return out;
}

/** The manifest of a day, or null. */
export function manifestOf(dir: string, name: string, day: string): Manifest | null {
  const p = join(dir, name, `${name}-${day}.log.done`);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Manifest) : null;
}
