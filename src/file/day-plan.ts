import { defaultNames, type DayNames, type DaySuffix } from './paths.js';

/** What a pass over one flavor's directory does with each day (pure: the backend carries it out). */
export interface DayPlan {
  day: string;
  /** A past day's file without a manifest, whose grace has passed and that no writer holds: seal it. */
  seal: boolean;
  /** Past day, has a file, no manifest yet (listed by /stats until sealed). */
  unsealed: boolean;
  /** Sealed and the plain file is still there: compress it (when compression is on), or finish a compression. */
  compress: boolean;
  /** Leftover temp files of an interrupted compression or manifest write. */
  removeTemp: string[];
  /** Sealed (or no plain file left to seal) and older than the retention: remove every file of the day. */
  prune: boolean;
}

export interface PlanInput {
  /** File names in the flavor's directory. */
  names: readonly string[];
  flavor: string;
  /** The flavor's day now. */
  today: string;
  /** The flavor's day `idleCloseMs` ago: days before it are past their grace. */
  graceDay: string;
  /** Days before this one are removed (sealed ones only); null keeps everything. */
  pruneBefore: string | null;
  compress: boolean;
  /** Days with a writer in this process (never touched by a pass). */
  open: ReadonlySet<string>;
  /** How day files are named (backends.file.name); absent: the default name. */
  dayNames?: DayNames;
}

/** Group a flavor's files by day and decide what to do with each. */
export function planDays(input: PlanInput): DayPlan[] {
  const byDay = new Map<string, Set<DaySuffix>>();
  const names = input.dayNames ?? defaultNames;
  for (const name of input.names) {
    const parsed = names.parse(input.flavor, name);
    if (parsed === null) continue;
    const { day, suffix } = parsed;
    let s = byDay.get(day);
    if (s === undefined) byDay.set(day, (s = new Set()));
    s.add(suffix);
  }
  const plans: DayPlan[] = [];
  for (const [day, files] of [...byDay].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (day >= input.today || input.open.has(day)) continue;
    const log = files.has('');
    const done = files.has('.done');
    const removeTemp = [...files].filter((f) => f.endsWith('.tmp')).map((f) => names.withSuffix(input.flavor, day, f));
    // Without the plain file nothing is left to seal: a .gz without its
    // manifest is what a prune cut short leaves (it removes the manifest first).
    const prune = input.pruneBefore !== null && day < input.pruneBefore && (done || !log);
    plans.push({
      day,
      seal: log && !done && day < input.graceDay,
      unsealed: log && !done,
      compress: input.compress && log && done && !prune,
      removeTemp: prune ? [] : removeTemp,
      prune,
    });
  }
  return plans;
}
