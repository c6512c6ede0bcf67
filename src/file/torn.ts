import { promises as fs } from 'node:fs';

/**
 * A day file must end with a newline: every batch is written whole or taken
 * back, so only a crash in the middle of a write (or someone else's write)
 * leaves a partial last Line. Before a file is appended to again or sealed,
 * that tail is moved to `<name>.torn` (appended, fsynced) and cut off, so no
 * reader and no manifest ever meets half a Line.
 *
 * `fd` must be open for reading and writing. Returns the file's size after,
 * and how many bytes were cut (0 when it ended with a newline or was empty).
 */
export async function cutTornTail(fd: fs.FileHandle, size: number, tornPath: string): Promise<{ size: number; cut: number }> {
  if (size === 0) return { size, cut: 0 };
  const last = Buffer.alloc(1);
  await fd.read(last, 0, 1, size - 1);
  if (last[0] === 10) return { size, cut: 0 };
  // Look backwards for the last newline, a chunk at a time.
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  let keep = 0;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await fd.read(chunk, 0, end - start, start);
    const nl = chunk.subarray(0, bytesRead).lastIndexOf(10);
    if (nl !== -1) {
      keep = start + nl + 1;
      break;
    }
    end = start;
  }
  const tail = Buffer.alloc(size - keep);
  await fd.read(tail, 0, tail.length, keep);
  const torn = await fs.open(tornPath, 'a', 0o640);
  try {
    await torn.write(Buffer.concat([tail, Buffer.from('\n')]));
    await torn.sync();
  } finally {
    await torn.close();
  }
  await fd.truncate(keep);
  await fd.sync();
  return { size: keep, cut: tail.length };
}
