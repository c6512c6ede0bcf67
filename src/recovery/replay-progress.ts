/**
 * A replay's progress file, `<stateDir>/replay-<flavor>-<from>-<to>.json`:
 * how far the replay is settled, and the Lines before that point it could
 * not deliver. Replaced whole and fsynced (src/atomic-write.ts): a crash
 * leaves the old progress or the new one, and a saved position is on disk.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from '../atomic-write.js';
import { CommandError, isSystemError } from './command-error.js';
import type { Position } from './watermark.js';

/** One Line of a day file: its bytes [start, end), the newline included. */
export interface LineRef {
  day: string;
  start: number;
  end: number;
}

export interface Progress extends Position {
  flavor: string;
  from: string;
  to: string;
  /** Lines delivered by every run of this replay. */
  delivered: number;
  /** Every Line of the range delivered or found undeliverable. */
  complete: boolean;
  /** Lines before the position that failed for a reason that may pass (a timeout, a broker away): produced again on resume. */
  retry: LineRef[];
  /** Lines the broker refused on their own for what they are (too large): reported once, never produced again. */
  undeliverable: (LineRef & { reason: string })[];
}

export function readProgress(path: string): Progress | null {
  let p: Partial<Progress>;
  try {
    p = JSON.parse(readFileSync(path, 'utf8')) as Partial<Progress>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (isSystemError(err)) throw err;
    throw new CommandError(`${path}: unreadable replay progress (${(err as Error).message}); delete it to start over`);
  }
  // Progress of an earlier version has neither list.
  return { ...p, retry: p.retry ?? [], undeliverable: p.undeliverable ?? [] } as Progress;
}

export function writeProgress(path: string, p: Progress): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  writeFileAtomicSync(path, JSON.stringify(p) + '\n');
}

export const refKey = (r: LineRef): string => `${r.day}:${r.start}`;

/** Where a run starts: its progress file, the position, and what earlier runs left. */
export interface Start {
  progressFile: string;
  resumeAt: Position | null;
  /** Lines delivered by earlier runs. */
  delivered: number;
  /** Failed Lines before the position, to produce again: from the last run, then this one's. */
  retry: Map<string, LineRef>;
  undeliverable: Progress['undeliverable'];
}

/**
 * Where a replay starts, from its progress file: the start of the range,
 * or with `resume` where the last run stopped; the saved progress when that
 * replay is complete already. A CommandError when there is nothing to
 * resume, or an interrupted run is not resumed.
 */
export function resumePoint(progressFile: string, resume: boolean): Start | Progress & { complete: true } {
  const saved = readProgress(progressFile);
  if (resume && saved === null) throw new CommandError(`no interrupted replay of this range to resume (${progressFile})`);
  if (resume && saved!.complete) return saved as Progress & { complete: true };
  if (!resume && saved !== null && !saved.complete) {
    throw new CommandError(`an interrupted replay of this range delivered ${saved.delivered} Lines: add --resume to continue it, or delete ${progressFile} to start over`);
  }
  if (!resume || saved === null) return { progressFile, resumeAt: null, delivered: 0, retry: new Map(), undeliverable: [] };
  return {
    progressFile,
    resumeAt: { day: saved.day, offset: saved.offset },
    delivered: saved.delivered,
    retry: new Map(saved.retry.map((r) => [refKey(r), r])),
    undeliverable: [...saved.undeliverable],
  };
}
