/**
 * The ledger: the acknowledged watermark, i.e. every record with a sequence
 * at or below `acked` has a delivery report from Kafka. One small JSON file,
 * `ledger.json`, replaced atomically (write a temp file, fsync it, rename it
 * over, fsync the directory) so a crash leaves the old or the new one, never
 * a torn one. It is written before any fully acknowledged segment is
 * unlinked, so a segment is never gone while the ledger still points into it.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';

export const LEDGER = 'ledger.json';

export interface Ledger {
  acked: number;
}

/** The ledger, or why it could not be used ('missing' / 'corrupt'). */
export function readLedger(dir: string): Ledger | 'missing' | 'corrupt' {
  let text: string;
  try {
    text = readFileSync(join(dir, LEDGER), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return 'corrupt';
  }
  try {
    const v = JSON.parse(text) as { acked?: unknown };
    if (typeof v.acked === 'number' && Number.isSafeInteger(v.acked) && v.acked >= 0) return { acked: v.acked };
  } catch { /* below */ }
  return 'corrupt';
}

/** Replace the ledger atomically and durably. Throws on I/O errors. */
export function writeLedger(dir: string, ledger: Ledger): void {
  const tmp = join(dir, `${LEDGER}.tmp`);
  const fd = openSync(tmp, 'w', 0o640);
  try {
    writeSync(fd, `${JSON.stringify({ acked: ledger.acked })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, LEDGER));
  fsyncDir(dir);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** writeLedger off the event loop (the daemon's: fsync may take a while). */
export async function writeLedgerAsync(dir: string, ledger: Ledger): Promise<void> {
  const tmp = join(dir, `${LEDGER}.tmp`);
  const fh = await open(tmp, 'w', 0o640);
  try {
    await fh.writeFile(`${JSON.stringify({ acked: ledger.acked })}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, LEDGER));
  await fsyncDirAsync(dir);
}

export async function fsyncDirAsync(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
