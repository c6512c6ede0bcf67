/**
 * The ledger: the acknowledged watermark, i.e. every record with a sequence
 * at or below `acked` has a delivery report from Kafka. One small JSON file,
 * `ledger.json`, replaced atomically (write a temp file, fsync it, rename it
 * over, fsync the directory) so a crash leaves the old or the new one, never
 * a torn one. It is written before any fully acknowledged segment is
 * unlinked, so a segment is never gone while the ledger still points into it.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../atomic-write.js';
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

/** Replace the ledger atomically and durably (atomic-write.ts), off the event loop. */
export async function writeLedgerAsync(dir: string, ledger: Ledger): Promise<void> {
  await writeFileAtomic(join(dir, LEDGER), `${JSON.stringify({ acked: ledger.acked })}\n`);
}
