/**
 * `scratchd erase`: one person's Lines removed from a flavor's sealed days
 * (a data-subject request): every Line whose top-level field equals the
 * value, from plain and compressed days, with manifests and indexes made
 * anew (src/file/erase.ts says how a crash leaves one day or the other).
 *
 * Only sealed days: the day still being written is refused, and so is a
 * sealed day the daemon has yet to compress (it would be compressing the file
 * erase rewrites); both are named, nothing is changed, exit 1. What erase
 * cannot reach is in docs/privacy.md: Kafka's copies, and any older
 * copy a later replay or rebuild would bring back.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Flavor } from '../flavor.js';
import { eraseDay, recoverErasures } from '../file/erase.js';
import { readManifest } from '../file/manifest.js';
import { dayNames, dayOfName, dayPaths, flavorDir } from '../file/paths.js';
import { isDay } from '../day.js';
import { progressBar } from '../recovery/progress.js';
import { CommandError, commandArgs, flavorNamed, runCommand } from './command.js';

const usage = `Usage: scratchd erase --config FILE --flavor NAME --field F --value V [--from DAY] [--to DAY] [--dry-run]

Remove every Line whose top-level field F equals V from the flavor's sealed
days (plain or gzip), from DAY to DAY (default: every sealed day). Each day is
rewritten beside the original and replaces it whole, with a new manifest
(lines, bytes, sha256, erased) and index. Unsealed days in the range are
refused. Kafka topics are not touched.

      --dry-run   count the Lines that would be erased; change nothing
  -h, --help      print this help
`;

interface Request {
  config: Config;
  flavor: Flavor;
  field: string;
  value: string;
  from: string | null;
  to: string | null;
  dryRun: boolean;
}

export const run = (argv: string[]): Promise<number> => runCommand('erase', usage, () => request(argv), erase);

function request(argv: string[]): Request | null {
  const args = commandArgs(argv, {
    flavor: { type: 'string' }, field: { type: 'string' }, value: { type: 'string' },
    from: { type: 'string' }, to: { type: 'string' }, 'dry-run': { type: 'boolean' },
  });
  if (args === null) return null;
  const { values: v, config } = args;
  if (v.flavor === undefined || v.field === undefined || v.value === undefined) throw new CommandError('--flavor, --field and --value are required (try --help)');
  for (const [name, day] of [['--from', v.from], ['--to', v.to]] as const) {
    if (day !== undefined && !isDay(day)) throw new CommandError(`${name} ${day}: not a date (YYYY-MM-DD)`);
  }
  if (v.from !== undefined && v.to !== undefined && v.from > v.to) throw new CommandError(`--from ${v.from} is after --to ${v.to}`);
  return { config, flavor: flavorNamed(config, v.flavor), field: v.field, value: v.value, from: v.from ?? null, to: v.to ?? null, dryRun: v['dry-run'] === true };
}

async function erase(r: Request): Promise<number> {
  const root = r.config.backends.file.dir;
  const dir = flavorDir(root, r.flavor.name);
  if (!existsSync(dir)) throw new CommandError(`${dir}: no files for flavor ${r.flavor.name}`);
  const unlock = r.dryRun ? () => {} : lock(dir);
  try {
    return await eraseLocked(r, root, dir);
  } finally {
    unlock();
  }
}

const LOCK = 'erase.lock';

/**
 * One erase at a time in a flavor's directory: two runs write the same temp
 * files, and one's journal puts the other's rewrite in place, so its own
 * erasures are lost while it reports them done. The lock file holds the
 * run's pid; one left by a run that is gone (a crash) is taken over.
 */
function lock(dir: string): () => void {
  const path = join(dir, LOCK);
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o640 });
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let pid = 0;
    try {
      pid = Number(readFileSync(path, 'utf8').trim());
    } catch { /* removed meanwhile: try again */ }
    if (pid > 0 && alive(pid)) throw new CommandError(`refused, nothing changed: another erase (pid ${pid}) is running in ${dir}`);
    rmSync(path, { force: true });
  }
}

/** Is `pid` an erase still running? (Not a pid a reboot has since given to another program.) */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('erase');
  } catch {
    return true;
  }
}

async function eraseLocked(r: Request, root: string, dir: string): Promise<number> {
  const names = dayNames(r.config.backends.file);
  if (!r.dryRun) {
    for (const j of await recoverErasures(dir)) process.stderr.write(`scratchd erase: finished an interrupted erase (${j})\n`);
  }
  const inRange = (d: string): boolean => (r.from === null || d >= r.from) && (r.to === null || d <= r.to);
  const days = [...new Set(readdirSync(dir).map((n) => dayOfName(r.flavor.name, n, names)).filter((d): d is string => d !== null && inRange(d)))].sort();
  const sealed: string[] = [];
  const refused: string[] = [];
  const gzip = r.config.backends.file.compress === 'gzip';
  for (const day of days) {
    const m = await readManifest(dayPaths(root, r.flavor.name, day, names).done);
    if (m === null) {
      // Without a range, the day being written (and any not yet sealed) is simply not a sealed day.
      if (r.from !== null || r.to !== null) refused.push(`${day} (not sealed)`);
    } else if (gzip && m.compressed === undefined) {
      refused.push(`${day} (not yet compressed)`);
    } else {
      sealed.push(day);
    }
  }
  if (refused.length > 0) throw new CommandError(`refused, nothing changed: ${refused.join(', ')}: erase rewrites only sealed days the daemon is done with (narrow --from/--to, or run again once compressed)`);
  const bar = progressBar('erase', sealed.length, 'days');
  let total = 0;
  let read = 0;
  const summary: string[] = [];
  try {
    for (const [i, day] of sealed.entries()) {
      const e = await eraseDay(dayPaths(root, r.flavor.name, day, names), r.field, r.value, { dryRun: r.dryRun, onLines: (n) => bar.update(i, read + n) });
      read += e.lines;
      total += e.erased;
      summary.push(`${r.flavor.name} ${day}: ${e.erased} of ${e.lines} Lines ${r.dryRun ? 'would be erased' : 'erased'}`);
      bar.update(i + 1, read);
    }
  } finally {
    bar.stop();
  }
  for (const s of summary) process.stdout.write(`${s}\n`);
  process.stdout.write(`${r.dryRun ? 'would erase' : 'erased'} ${total} Lines from ${sealed.length} sealed days of ${r.flavor.name} (${r.field} = ${JSON.stringify(r.value)})\n`);
  return 0;
}
