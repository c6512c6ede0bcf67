/**
 * The process's privacy state: salts under `<stateDir>/salts` (made only
 * when a flavor uses them) and the minute keeper that makes and destroys
 * them, on the main thread. One for the process, whatever the reloads: the
 * serving threads get every salt from it after each pass (threads/).
 */
import { join } from 'node:path';
import type { Flavor } from '../flavor.js';
import { rateLimited, type Logger } from '../log.js';
import { keepSalts } from './keeper.js';
import { PrivacyState } from './policy.js';
import { Salts } from './salts.js';

export function startPrivacy(
  stateDir: string, flavors: () => readonly Flavor[], log: Logger,
  /** After each pass of the keeper: every salt, for the serving threads. */
  passed: (salts: Salts) => void = () => {},
): { privacy: PrivacyState; passSoon(): void; passFor(flavors: readonly Flavor[]): void } {
  const salts = threadSalts(stateDir, log);
  const keeper = keepSalts(salts, flavors, Date.now, () => passed(salts));
  // passFor: a pass over a config about to be applied (a reload), before any thread serves it.
  return { privacy: new PrivacyState(salts), passSoon: keeper.soon, passFor: keeper.now };
}

/** The salts of a serving thread or the main thread: in stateDir, their failures logged. */
export function threadSalts(stateDir: string, log: Logger): Salts {
  const warn = rateLimited(log, 60_000);
  return new Salts(join(stateDir, 'salts'), (err) =>
    warn(`salt:${err.code ?? 'error'}`, { err: err.message }, 'privacy: a salt could not be written or removed; visitor ids of this day will change at a restart'));
}
