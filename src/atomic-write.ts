/**
 * A file replaced whole, so that a crash leaves either its old bytes or its
 * new ones, never a mix or nothing: write a temp file beside it, fsync it,
 * rename it over the file, fsync the directory (without that the rename
 * itself may not survive a crash). One copy for every small state file
 * (manifests, the spool's ledger, replay progress).
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
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export async function writeFileAtomic(path: string, data: Buffer | string, mode = 0o640): Promise<void> {
  const temp = `${path}.tmp`;
  const fd = await fs.open(temp, 'w', mode);
  try {
    await fd.writeFile(data);
    await fd.sync();
  } finally {
    await fd.close();
  }
  await fs.rename(temp, path);
  const dir = await fs.open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
