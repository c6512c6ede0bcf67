/**
 * A file replaced whole, so that a crash leaves either its old bytes or its
 * new ones, never a mix or nothing: write a temp file beside it, fsync it,
 * rename it over the file, fsync the directory (without that the rename
 * itself may not survive a crash). One copy for every small state file
 * (manifests, the spool's ledger, replay progress, erase's journal).
 */
import { closeSync, fsyncSync, openSync, promises as fs, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeFileAtomicSync(path: string, data: Buffer | string, mode = 0o640): void {
  const temp = `${path}.tmp`;
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = openSync(temp, 'w', mode);
  try {
    for (let n = 0; n < bytes.length;) n += writeSync(fd, bytes, n);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  syncDirSync(dirname(path));
}

export async function writeFileAtomic(path: string, data: Buffer | string, mode = 0o640): Promise<void> {
  const temp = `${path}.tmp`;
  await writeFileSynced(temp, data, mode);
  await fs.rename(temp, path);
  await syncDir(dirname(path));
}

/** Write a whole file and fsync it (no rename: for a caller that renames several files itself). */
export async function writeFileSynced(path: string, data: Buffer | string, mode = 0o640): Promise<void> {
  const fd = await fs.open(path, 'w', mode);
  try {
    await fd.writeFile(data);
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** fsync a directory, so a rename or unlink in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fd = await fs.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

export function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
