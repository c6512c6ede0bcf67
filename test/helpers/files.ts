import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The lines of a flavor's day file under `dir`, without the final newline; [] when absent. */
export function dayLines(dir: string, flavor: string, day: string): string[] {
  const file = join(dir, flavor, `${flavor}-${day}.log`);
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  if (text !== '' && !text.endsWith('\n')) throw new Error(`${file} ends in a partial line`);
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

/** Counters of a backend from the daemon's final "drained" log line. */
export function drainedCounters(logs: Record<string, unknown>[], backend: string): Record<string, number> {
  const drained = logs.find((l) => l.msg === 'drained') as { backends: Record<string, Record<string, number>> } | undefined;
  if (drained === undefined) throw new Error('no "drained" log line');
  return drained.backends[backend]!;
}
