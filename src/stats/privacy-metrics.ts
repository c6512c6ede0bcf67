/**
 * What the privacy and bot rules did, by flavor (privacy/policy.ts counts):
 * `scratchd_privacy_total{flavor,signal,action}`, `scratchd_bots_total{flavor,action}`,
 * `scratchd_prefetch_total{flavor}`, and the same numbers in /stats under `privacy`.
 */
import type { Registry } from 'prom-client';
import type { PrivacyState } from '../privacy/policy.js';
import { scrapedLabelledCounter } from './scraped.js';

export interface PrivacySnapshot {
  /** privacy[flavor] = { gpc: { anonymize, drop }, dnt: {…}, bots: { keep, tag, drop }, prefetch } */
  [flavor: string]: { gpc: Record<string, number>; dnt: Record<string, number>; bots: Record<string, number>; prefetch: number };
}

export function registerPrivacyMetrics(registry: Registry, state: PrivacyState): void {
  scrapedLabelledCounter(registry, 'scratchd_privacy_total',
    'Hits that carried Sec-GPC: 1 or DNT: 1 where the flavor acts on it, by flavor, signal (gpc, dnt) and action taken (anonymize, drop).',
    ['flavor', 'signal', 'action'], function* () {
      for (const [flavor, c] of state.all()) {
        for (const [key, n] of c.signals) {
          const [signal, action] = key.split('/') as [string, string];
          yield [{ flavor, signal, action }, n];
        }
      }
    });
  scrapedLabelledCounter(registry, 'scratchd_bots_total', 'Hits from crawlers (flavors with bots set), by flavor and action (keep, tag, drop).',
    ['flavor', 'action'], function* () {
      for (const [flavor, c] of state.all()) for (const [action, n] of c.bots) yield [{ flavor, action }, n];
    });
  scrapedLabelledCounter(registry, 'scratchd_prefetch_total', 'Prefetches answered and not recorded (flavors with bots set), by flavor.',
    ['flavor'], function* () {
      for (const [flavor, c] of state.all()) yield [{ flavor }, c.prefetch];
    });
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
