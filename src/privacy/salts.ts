/**
 * The day's salt of each flavor: 32 random bytes, the key of the visitor id
 * and of hashed IPs. Kept in RAM and in `<stateDir>/salts/<flavor>/<day>`
 * (mode 0600, directories 0700) so a restart keeps the day's ids; destroyed
 * once two days old (every day before yesterday, in the flavor's zone), so no
 * id can be recomputed after that, by anyone.
 *
 * `prepare()` runs at start and then every minute off the request path: it
 * makes today's and tomorrow's salts (so the first hit after midnight finds
 * its salt in RAM) and destroys the old ones. `salt()` is the request path's
 * map lookup; it makes a salt itself only if a hit comes before prepare() did.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { join } from 'node:path';

export const SALT_BYTES = 32;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export class Salts {
  /** flavor → day → salt: nested, not keyed by a joined string that would be made and hashed on every hit. */
  private readonly ram = new Map<string, Map<string, Buffer>>();
  /** Called when a salt was not in RAM (a new day began, or a first hit): the keeper runs a pass then. */
  onMiss: () => void = () => {};

  /** `onError`: a salt could not be read or written (it is then kept in RAM only: the day's ids end with the process). */
  constructor(private readonly dir: string, private readonly onError: (err: NodeJS.ErrnoException) => void = () => {}) {}

  /** The salt of `flavor`'s `day`, read from disk or made and written on first use. */
  salt(flavor: string, day: string): Buffer {
    let days = this.ram.get(flavor);
    let s = days?.get(day);
    if (s === undefined) {
      s = this.load(flavor, day);
      if (days === undefined) {
        days = new Map();
        this.ram.set(flavor, days);
      }
      days.set(day, s);
      this.onMiss();
    }
    return s;
  }

  /** Every salt in RAM: the main thread hands them to the serving threads (threads/). */
  all(): [flavor: string, day: string, salt: Uint8Array][] {
    const out: [string, string, Uint8Array][] = [];
    for (const [flavor, days] of this.ram) for (const [day, s] of days) out.push([flavor, day, s]);
    return out;
  }

  /**
   * A serving thread's salts become exactly the main thread's: one salt per
   * flavor and day for the whole process, also when none can be written, and
   * those the main thread destroyed are forgotten here too.
   */
  adopt(all: readonly [string, string, Uint8Array][]): void {
    this.ram.clear();
    for (const [flavor, day, s] of all) {
      let days = this.ram.get(flavor);
      if (days === undefined) {
        days = new Map();
        this.ram.set(flavor, days);
      }
      days.set(day, Buffer.from(s));
    }
  }

  /** Today's and tomorrow's salts made; every salt before yesterday destroyed, in RAM and on disk. */
  prepare(flavor: string, today: string, tomorrow: string, yesterday: string): void {
    this.salt(flavor, today);
    this.salt(flavor, tomorrow);
    this.destroyBefore(flavor, yesterday);
  }

  /** Every salt of `flavor` before `day` destroyed, in RAM and on disk. */
  destroyBefore(flavor: string, day: string): void {
    const inRam = this.ram.get(flavor);
    if (inRam !== undefined) for (const d of inRam.keys()) if (d < day) inRam.delete(d);
    let days: string[];
    try {
      days = readdirSync(join(this.dir, flavor));
    } catch {
      return;
    }
    try {
      for (const d of days) if (DAY.test(d) && d < day) rmSync(join(this.dir, flavor, d), { force: true });
    } catch (err) {
      this.onError(err as NodeJS.ErrnoException);
    }
  }

  /** The flavors with salts on disk (a flavor removed from the config keeps its dir until its salts are gone). */
  flavorsOnDisk(): string[] {
    try {
      return readdirSync(this.dir);
    } catch {
      return [];
    }
  }

  private load(flavor: string, day: string): Buffer {
    const path = join(this.dir, flavor, day);
    const existing = readSalt(path);
    if (existing !== null) return existing;
    const s = randomBytes(SALT_BYTES);
    const tmp = `${path}.${process.pid}.${threadId}.tmp`;
    try {
      mkdirSync(join(this.dir, flavor), { recursive: true, mode: 0o700 });
      // Written before use and fsynced: an id handed out must be reproducible after a crash the same day.
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, s);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // link() fails when the day's salt exists: every serving thread makes
      // its own Salts, and the first one linked is the one all of them use.
      try {
        linkSync(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const won = readSalt(path);
        if (won !== null) return won;
        renameSync(tmp, path); // a torn salt from a crash: replace it
      }
    } catch (err) {
      this.onError(err as NodeJS.ErrnoException);
    } finally {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // the directory itself is broken (reported above): nothing was made to remove
      }
    }
    return s;
  }
}

function readSalt(path: string): Buffer | null {
  try {
    const s = readFileSync(path);
    if (s.length === SALT_BYTES) return s;
  } catch { /* none yet */ }
  return null;
}
