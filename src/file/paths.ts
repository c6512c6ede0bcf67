import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * Names of the files of one flavor's day, all in `<dir>/<flavor>/`: the day
 * file, named by `backends.file.name` (default `<flavor>-<day>.log`), and
 * beside it `.idx` (sparse index), `.done` (manifest: the day is sealed),
 * `.gz` (compressed), `.torn` (a torn last Line cut off at start-up), each
 * the day file's name plus that suffix. The formats of `.idx` and `.done` are
 * fixed (helpers-interfaces.md): `scratchd replay/rebuild` read them. This is
 * the one place names are made and read back.
 */
export interface DayPaths {
  readonly log: string;
  readonly idx: string;
  readonly done: string;
  readonly gz: string;
  readonly torn: string;
  /** Where compression writes before the rename; a leftover one is removed at start. */
  readonly gzTemp: string;
}

export const DEFAULT_NAME = '{flavor}-{day}.log';
/** What may follow a day file's name: its companions and their temp files. */
const SUFFIXES = ['', '.idx', '.done', '.gz', '.torn', '.gz.tmp', '.done.tmp'] as const;
export type DaySuffix = (typeof SUFFIXES)[number];

/**
 * Why a `backends.file.name` template cannot be used, or null. One `{day}`,
 * or days would share a file and the passes could not tell them apart; no
 * `/` (the name is one file in the flavor's directory); no other braces.
 */
export function templateProblem(template: string): string | null {
  if (template.split('{day}').length !== 2) return 'must hold {day} exactly once';
  if (template.includes('/') || template.includes('\0')) return 'must be a file name (no "/")';
  if (template.startsWith('.')) return 'must not start with "."';
  const rest = template.replaceAll(/\{(flavor|day|instance)\}/g, '');
  if (/[{}]/.test(rest)) return 'knows only {flavor}, {day} and {instance}';
  return null;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The day file names of one template and instance: made, and read back from a directory listing. */
export class DayNames {
  /** Per flavor: the pattern of its names (made once: a pass reads whole directories). */
  private readonly patterns = new Map<string, RegExp>();

  constructor(readonly template: string = DEFAULT_NAME, readonly instance: string = hostname()) {}

  /** The day file's name (no directory). */
  log(flavor: string, day: string): string {
    return this.template.replaceAll('{flavor}', flavor).replaceAll('{instance}', this.instance).replace('{day}', day);
  }

  /** The name of the day file's companion `suffix` (a parse() of it gives day and suffix back). */
  withSuffix(flavor: string, day: string, suffix: DaySuffix): string {
    return this.log(flavor, day) + suffix;
  }

  /** The day and suffix of a file of `flavor` named `name` (any of the names above, or a temp name), or null. */
  parse(flavor: string, name: string): { day: string; suffix: DaySuffix } | null {
    let re = this.patterns.get(flavor);
    if (re === undefined) {
      const [before, after] = this.template.split('{day}').map((part) =>
        escape(part).replaceAll(escape('{flavor}'), escape(flavor)).replaceAll(escape('{instance}'), escape(this.instance)));
      const suffixes = SUFFIXES.filter((s) => s !== '').map(escape).join('|');
      re = new RegExp(`^${before}(\\d{4}-\\d{2}-\\d{2})${after}(${suffixes})?$`);
      this.patterns.set(flavor, re);
    }
    const m = re.exec(name);
    return m === null ? null : { day: m[1]!, suffix: (m[2] ?? '') as DaySuffix };
  }
}

/** The names a file backend config asks for (loadConfig fills `name` and `instance`). */
export function dayNames(config: { name?: string; instance?: string }): DayNames {
  return new DayNames(config.name ?? DEFAULT_NAME, config.instance ?? hostname());
}

/** The default names on this host (tests, and code not given a config). */
export const defaultNames = new DayNames();

export function flavorDir(dir: string, flavor: string): string {
  return join(dir, flavor);
}

/** `<dir>/<flavor>/<day file name>` */
export function dayFile(dir: string, flavor: string, day: string, names: DayNames = defaultNames): string {
  return join(dir, flavor, names.log(flavor, day));
}

export function dayPaths(dir: string, flavor: string, day: string, names: DayNames = defaultNames): DayPaths {
  const log = dayFile(dir, flavor, day, names);
  return { log, idx: `${log}.idx`, done: `${log}.done`, gz: `${log}.gz`, torn: `${log}.torn`, gzTemp: `${log}.gz.tmp` };
}

/** The day a file of `flavor` belongs to (any of the names above, or a temp name), or null. */
export function dayOfName(flavor: string, name: string, names: DayNames = defaultNames): string | null {
  return names.parse(flavor, name)?.day ?? null;
}

/** `day` (YYYY-MM-DD) moved by `days` calendar days. */
export function addDays(day: string, days: number): string {
  const t = Date.parse(`${day}T00:00:00Z`) + days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}
