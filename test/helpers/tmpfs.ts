// A small real filesystem to fill up: a tmpfs mounted on a directory (we
// are root in the chroot's own mount namespace), unmounted at teardown.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';

/** Mounts a tmpfs of `size` (e.g. '1m') on `dir`; at teardown unmounts it (lazily if busy) and removes `dir`. */
export function mountTmpfs(t: Test, dir: string, size: string): string {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  t.teardown(() => {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Writes `dir/filler` until ENOSPC, to the last byte of a partly used page; returns its size. */
export function fillDisk(dir: string, name = 'filler'): number {
  const fd = openSync(join(dir, name), 'a');
  let size = 0;
  try {
    for (const chunk of [Buffer.alloc(4096, 'f'), Buffer.alloc(1, 'f')]) {
      try {
        for (;;) size += writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  return size;
}
