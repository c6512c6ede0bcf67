/**
 * The process's privacy state: salts under `<stateDir>/salts` (made only
 * when a flavor uses them) and the minute keeper that makes and destroys
 * them. One for the process, whatever the reloads.
 */
import { join } from 'node:path';
import type { Flavor } from '../flavor.js';
import { rateLimited, type Logger } from '../log.js';
import { keepSalts } from './keeper.js';
import { PrivacyState } from './policy.js';
import { Salts } from './salts.js';

export function startPrivacy(stateDir: string, flavors: () => readonly Flavor[], log: Logger): PrivacyState {
  const warn = rateLimited(log, 60_000);
  const salts = new Salts(join(stateDir, 'salts'), (err) =>
    warn(`salt:${err.code ?? 'error'}`, { err: err.message }, 'privacy: a salt could not be written or removed; visitor ids of this day will change at a restart'));
  keepSalts(salts, flavors);
  return new PrivacyState(salts);
}
