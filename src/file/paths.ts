import { join } from 'node:path';

/**
 * Names of the files of one flavor's day, all in `<dir>/<flavor>/`:
 * `<flavor>-<day>.log` (the Lines), `.log.idx` (sparse index), `.log.done`
 * (manifest: the day is sealed), `.log.gz` (compressed), `.log.torn` (a torn
 * last Line cut off at start-up). The formats of `.idx` and `.done` are fixed
 * (helpers-interfaces.md): `scratchd replay/rebuild` read them.
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

export function flavorDir(dir: string, flavor: string): string {
  return join(dir, flavor);
}

/** `<dir>/<flavor>/<flavor>-<YYYY-MM-DD>.log` */
export function dayFile(dir: string, flavor: string, day: string): string {
  return join(dir, flavor, `${flavor}-${day}.log`);
}

export function dayPaths(dir: string, flavor: string, day: string): DayPaths {
  const log = dayFile(dir, flavor, day);
  return { log, idx: `${log}.idx`, done: `${log}.done`, gz: `${log}.gz`, torn: `${log}.torn`, gzTemp: `${log}.gz.tmp` };
}

/** The day a file of `flavor` belongs to (any of the names above, or a temp name), or null. */
export function dayOfName(flavor: string, name: string): string | null {
  if (!name.startsWith(`${flavor}-`)) return null;
  const m = /^(\d{4}-\d{2}-\d{2})\.log(\.idx|\.done|\.gz|\.torn|\.gz\.tmp|\.done\.tmp)?$/.exec(name.slice(flavor.length + 1));
  return m === null ? null : m[1]!;
}

/** `day` (YYYY-MM-DD) moved by `days` calendar days. */
export function addDays(day: string, days: number): string {
  const t = Date.parse(`${day}T00:00:00Z`) + days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}
