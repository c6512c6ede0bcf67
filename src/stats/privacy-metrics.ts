/**
 * What the privacy and bot rules did, by flavor (privacy/policy.ts counts):
 * /stats `privacy`, and from it `scratchd_privacy_total{flavor,signal,action}`,
 * `scratchd_bots_total{flavor,action}` and `scratchd_prefetch_total{flavor}`.
 */
import type { PrivacyState } from '../privacy/policy.js';
import { each, type Family, type Sample } from './family.js';

export interface PrivacySnapshot {
  /** privacy[flavor] = { gpc: { anonymize, drop }, dnt: {…}, bots: { keep, tag, drop }, prefetch } */
  [flavor: string]: { gpc: Record<string, number>; dnt: Record<string, number>; bots: Record<string, number>; prefetch: number };
}

export function privacySnapshot(state: PrivacyState): PrivacySnapshot {
  const out: PrivacySnapshot = {};
  for (const [flavor, c] of state.all()) {
    const s = { gpc: {} as Record<string, number>, dnt: {} as Record<string, number>, bots: Object.fromEntries(c.bots), prefetch: c.prefetch };
    for (const [key, n] of c.signals) {
      const [signal, action] = key.split('/') as ['gpc' | 'dnt', string];
      s[signal][action] = n;
    }
    out[flavor] = s;
  }
  return out;
}

const signals = ['gpc', 'dnt'] as const;

export const privacyFamilies: readonly Family<PrivacySnapshot>[] = [
  {
    name: 'scratchd_privacy_total',
    help: 'Hits that carried Sec-GPC: 1 or DNT: 1 where the flavor acts on it, by flavor, signal (gpc, dnt) and action taken (anonymize, drop).',
    type: 'counter',
    read: (s) => Object.entries(s).flatMap(([flavor, p]) => signals.flatMap((signal) =>
      Object.entries(p[signal]).map(([action, value]): Sample => ({ labels: { flavor, signal, action }, value })))),
  },
  {
    name: 'scratchd_bots_total',
    help: 'Hits from crawlers (flavors with bots set), by flavor and action (keep, tag, drop).',
    type: 'counter',
    read: (s) => Object.entries(s).flatMap(([flavor, p]) =>
      Object.entries(p.bots).map(([action, value]): Sample => ({ labels: { flavor, action }, value }))),
  },
  {
    name: 'scratchd_prefetch_total',
    help: 'Prefetches answered and not recorded (flavors with bots set), by flavor.',
    type: 'counter',
    read: (s) => each(s, 'flavor', (p) => p.prefetch),
  },
];
