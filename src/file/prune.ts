import { promises as fs } from 'node:fs';
import { join } from 'node:path';

/**
 * Remove every file of one flavor's day, the day file `logName` and its
 * companions (`names`: the directory's listing):
 * the manifest first, so that a prune cut short never leaves a day that looks
 * complete with files missing. Returns the names removed.
 */
export async function pruneDay(dir: string, logName: string, names: readonly string[]): Promise<string[]> {
  const prefix = logName;
  const mine = names.filter((n) => n === prefix || n.startsWith(`${prefix}.`));
  mine.sort((a, b) => Number(b.endsWith('.done')) - Number(a.endsWith('.done')));
  for (const n of mine) await fs.rm(join(dir, n), { force: true });
  return mine;
}
