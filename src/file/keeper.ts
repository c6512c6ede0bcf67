import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { FileConfig } from '../config.js';
import type { Flavor } from '../flavor.js';
import type { Logger, rateLimited } from '../log.js';
import { instanceOf } from '../instance.js';
import { Compressor } from './compress-queue.js';
import { planDays } from './day-plan.js';
import { addDays, dayNames, dayPaths, flavorDir, type DayNames } from './paths.js';
import { pruneDay } from './prune.js';
import { sealDay } from './seal.js';

/**
 * The past days of every flavor: which are sealed (so that no Line is ever
 * written to them again), sealing, and the pass over each flavor's directory
 * that seals what an earlier run left, compresses, removes leftover temp
 * files and prunes.
 */
export class DayKeeper {
  /** `flavor/day` of days sealed, being sealed or pruned: no writer is ever made for them again. */
  private readonly sealed = new Set<string>();
  /** Per flavor: past days with a file and no manifest, as of the last pass. */
  readonly unsealed = new Map<string, string[]>();
  readonly totals = { sealed: 0, compressed: 0, pruned: 0, torn: 0 };
  private readonly compressor: Compressor;
  /** How this backend names its day files (backends.file.name). */
  readonly names: DayNames;

  constructor(
    private readonly config: FileConfig,
    private readonly log: Logger,
    private readonly logError: ReturnType<typeof rateLimited>,
  ) {
    this.names = dayNames(config);
    this.compressor = new Compressor(log, logError, () => this.totals.compressed++);
  }

  /**
   * Sealed in this run, or by an earlier one: its manifest exists, or its
   * .gz (a prune cut short after the manifest went). Asked of every day,
   * today and later ones too, once per writer: after a restart with the clock
   * behind, or in another time zone, a sealed day can be "today" again, and
   * its files must never change.
   */
  isSealed(flavor: Flavor, day: string): boolean {
    const key = `${flavor.name}/${day}`;
    if (this.sealed.has(key)) return true;
    const paths = dayPaths(this.config.dir, flavor.name, day, this.names);
    if (existsSync(paths.done) || existsSync(paths.gz)) {
      this.sealed.add(key);
      return true;
    }
    return false;
  }

  /** From now on Lines of this day are late (call before closing its writer). */
  markSealed(flavor: Flavor, day: string): void {
    this.sealed.add(`${flavor.name}/${day}`);
  }

  torn(file: string, bytes: number, torn: string): void {
    this.totals.torn++;
    this.log.warn({ file, bytes, torn }, 'torn last line cut off');
  }

  /** Stop compressing (shutdown): the one under way is abandoned. */
  stop(): Promise<void> {
    this.compressor.stop();
    return this.compressor.stopped();
  }

  /** Seal one past day whose writer (if any) is closed; false (logged) when it could not be: a later pass tries again. */
  async seal(flavor: Flavor, day: string, lastTime: number): Promise<boolean> {
    this.markSealed(flavor, day);
    const paths = dayPaths(this.config.dir, flavor.name, day, this.names);
    try {
      const { manifest, tornBytes } = await sealDay(paths, flavor.name, day, lastTime, instanceOf(this.config));
      if (tornBytes > 0) this.torn(paths.log, tornBytes, paths.torn);
      this.totals.sealed++;
      this.log.info({ file: paths.log, lines: manifest.lines, bytes: manifest.bytes }, 'sealed day');
      if (this.config.compress === 'gzip') this.compressor.enqueue(paths);
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.logError(`seal ${e.code ?? 'error'}`, { file: paths.log, err: e.message }, 'sealing failed; trying again later');
      return false;
    }
  }

  /**
   * One flavor's directory: seal past days left unsealed, finish or start
   * compressions, remove leftover temp files, prune days past `retainDays`.
   * `openDays`: the days with a writer in this process, left alone. `final`
   * (shutdown): seal every past day, nothing else.
   */
  async scan(flavor: Flavor, openDays: () => ReadonlySet<string>, final: boolean): Promise<void> {
    const dir = flavorDir(this.config.dir, flavor.name);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return; // not there yet, or broken: the writers report it
    }
    // Asked after the listing, with no await until the days are marked: a
    // writer made while it was read (a Line of a day still today then, and
    // past once it returns) must not have its day sealed and compressed
    // under it, then written to and sealed again over the compressed manifest.
    const open = openDays();
    const now = Date.now();
    const today = flavor.day(now);
    const retain = this.config.retainDays;
    const plans = planDays({
      names, flavor: flavor.name, today, open,
      graceDay: final ? today : flavor.day(now - this.config.idleCloseMs),
      pruneBefore: final || retain === null ? null : addDays(today, -retain),
      compress: !final && this.config.compress === 'gzip',
      dayNames: this.names,
    });
    // Before any await: a Line for one of these days that arrives meanwhile
    // is late, never written into a day being sealed or removed.
    for (const p of plans) if (p.seal || p.prune) this.markSealed(flavor, p.day);
    const unsealed = [...open].filter((d) => d < today);
    for (const p of plans) {
      const paths = dayPaths(this.config.dir, flavor.name, p.day, this.names);
      if (this.compressor.busyWith(paths.log)) continue;
      if (p.prune) {
        await this.prune(flavor, dir, p.day, names);
        continue;
      }
      for (const name of final ? [] : p.removeTemp) {
        await fs.rm(join(dir, name), { force: true });
        this.log.warn({ file: join(dir, name) }, 'removed a leftover temp file');
      }
      if (p.seal) {
        if (!(await this.seal(flavor, p.day, 0))) unsealed.push(p.day);
      } else if (p.unsealed) {
        unsealed.push(p.day);
      }
      if (p.compress) this.compressor.enqueue(paths);
    }
    if (unsealed.length > 0) this.unsealed.set(flavor.name, unsealed.sort());
    else this.unsealed.delete(flavor.name);
  }

  private async prune(flavor: Flavor, dir: string, day: string, names: readonly string[]): Promise<void> {
    try {
      const files = await pruneDay(dir, this.names.log(flavor.name, day), names);
      this.totals.pruned++;
      this.log.info({ flavor: flavor.name, day, files }, 'pruned day');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.logError(`prune ${e.code ?? 'error'}`, { flavor: flavor.name, day, err: e.message }, 'pruning failed; trying again later');
    }
  }
}
