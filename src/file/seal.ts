import { promises as fs } from 'node:fs';
import { indexEnds } from './day-index.js';
import { digestFile, makeManifest, writeManifest, type Manifest } from './manifest.js';
import type { DayPaths } from './paths.js';
import { cutTornTail } from './torn.js';

/**
 * Seal a past day whose writer is closed: make sure the file ends with a
 * newline (a torn last Line goes to `.torn`), fsync it and its index, then
 * write the manifest atomically. From then on the day gets no Lines.
 *
 * `lastTime`: the latest arrival time this run wrote to the file, if any; the
 * index gives the first time and, after a crash, the last batch's first time
 * (the closest the files know).
 */
export async function sealDay(paths: DayPaths, flavor: string, day: string, lastTime: number, instance: string): Promise<{ manifest: Manifest; tornBytes: number }> {
  const fd = await fs.open(paths.log, 'r+');
  let tornBytes = 0;
  try {
    tornBytes = (await cutTornTail(fd, (await fd.stat()).size, paths.torn)).cut;
    await fd.sync();
  } finally {
    await fd.close();
  }
  try {
    const idx = await fs.open(paths.idx, 'r+');
    await idx.sync().finally(() => idx.close());
  } catch {
    // No index (or an unreadable one): the manifest does not depend on it.
  }
  const digest = await digestFile(paths.log);
  const ends = await indexEnds(paths.idx);
  const first = ends?.first.time ?? (lastTime || null);
  const last = Math.max(ends?.last.time ?? 0, lastTime) || null;
  const manifest = makeManifest(flavor, day, digest, first, last, instance);
  await writeManifest(paths.done, manifest);
  return { manifest, tornBytes };
}
