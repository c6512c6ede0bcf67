/**
 * The salts' clock, off the request path: at start and every minute, each
 * flavor that uses salts (a visitor id, or hashed IPs) gets today's and
 * tomorrow's, and every salt two days old is destroyed — also those of a
 * flavor a reload removed, counted in the zone the flavor last had (a zone
 * far ahead of UTC turns its days a day before UTC-12 does), or, for one
 * this process never served, from the day in UTC-12 (the last zone to turn a
 * day), so no zone's salt goes early. A hit that finds no salt in RAM (the
 * day has just turned) brings the next pass forward.
 */
import { dayOf } from '../day.js';
import type { Flavor } from '../flavor.js';
import { addDays } from '../file/paths.js';
import type { Salts } from './salts.js';

const EVERY_MS = 60_000;

export function usesSalts(f: Flavor): boolean {
  return f.privacy !== null && (f.privacy.visitorId !== undefined || f.privacy.ip === 'hashed');
}

export function keepSalts(
  salts: Salts, flavors: () => readonly Flavor[], now: () => number = Date.now,
  /** After each pass: the main thread hands every salt to the serving threads. */
  passed: () => void = () => {},
): { stop(): void; soon(): void; now(flavors: readonly Flavor[]): void } {
  /** Each flavor's zone as last configured, kept after a reload removes it. */
  const zones = new Map<string, string>();
  const pass = (table: readonly Flavor[] = flavors()): void => {
    const t = now();
    const known = new Set<string>();
    for (const f of table) {
      known.add(f.name);
      zones.set(f.name, f.timeZone);
      const today = dayOf(t, f.timeZone);
      if (usesSalts(f)) salts.prepare(f.name, today, addDays(today, 1), addDays(today, -1));
      else salts.destroyBefore(f.name, addDays(today, -1));
    }
    for (const name of salts.flavorsOnDisk()) {
      if (!known.has(name)) salts.destroyBefore(name, addDays(dayOf(t, zones.get(name) ?? 'Etc/GMT+12'), -1));
    }
    passed();
  };
  let soon = false;
  const passSoon = (): void => {
    if (soon) return;
    soon = true;
    setImmediate(() => { soon = false; pass(); });
  };
  salts.onMiss = passSoon;
  pass();
  const timer = setInterval(() => pass(), EVERY_MS);
  timer.unref();
  return { stop: () => { clearInterval(timer); salts.onMiss = () => {}; }, soon: passSoon, now: pass };
}
