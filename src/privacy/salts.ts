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
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const SALT_BYTES = 32;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export class Salts {
  private readonly ram = new Map<string, Buffer>();

  constructor(private readonly dir: string) {}

  /** The salt of `flavor`'s `day`, read from disk or made and written on first use. */
  salt(flavor: string, day: string): Buffer {
    const key = `${flavor}/${day}`;
    let s = this.ram.get(key);
    if (s === undefined) {
      s = this.load(flavor, day);
      this.ram.set(key, s);
    }
    return s;
  }

  /** Today's and tomorrow's salts made; every salt before yesterday destroyed, in RAM and on disk. */
  prepare(flavor: string, today: string, tomorrow: string, yesterday: string): void {
    this.salt(flavor, today);
    this.salt(flavor, tomorrow);
    for (const key of this.ram.keys()) {
      const [f, d] = key.split('/') as [string, string];
      if (f === flavor && d < yesterday) this.ram.delete(key);
    }
    let days: string[];
    try {
      days = readdirSync(join(this.dir, flavor));
    } catch {
      return;
    }
    for (const d of days) if (DAY.test(d) && d < yesterday) rmSync(join(this.dir, flavor, d), { force: true });
  }

  private load(flavor: string, day: string): Buffer {
    const path = join(this.dir, flavor, day);
    try {
      const s = readFileSync(path);
      if (s.length === SALT_BYTES) return s;
    } catch { /* none yet */ }
    const s = randomBytes(SALT_BYTES);
    mkdirSync(join(this.dir, flavor), { recursive: true, mode: 0o700 });
    // Written before use and fsynced: an id handed out must be reproducible after a crash the same day.
    const fd = openSync(path, 'w', 0o600);
    try {
      writeSync(fd, s);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return s;
  }
}
