/**
 * One process in /stats and /metrics: the serving threads' counters summed
 * into the main thread's, which the stats listener reads as before. Dedup's
 * counters are the main thread's own (its stores judge every thread's keys).
 */
import type { PrivacyState } from '../privacy/policy.js';
import { rejectReasons } from '../http/reject.js';
import type { RequestCounters } from '../http/counters.js';
import type { ThreadCounters } from './messages.js';

const addTo = (into: Map<string, number> | Map<number, number>, from: ReadonlyMap<unknown, number>): void => {
  const m = into as Map<unknown, number>;
  for (const [k, n] of from) m.set(k, (m.get(k) ?? 0) + n);
};

export function sumCounters(into: RequestCounters, privacy: PrivacyState, parts: readonly ThreadCounters[]): void {
  for (const m of Object.values(into.responses)) m.clear();
  for (const r of rejectReasons) into.rejected[r] = 0;
  into.cors.preflight = 0;
  into.cors.denied = 0;
  for (const c of privacy.all().values()) {
    c.signals.clear();
    c.bots.clear();
    c.prefetch = 0;
  }
  for (const { requests, privacy: p } of parts) {
    for (const method of Object.keys(into.responses) as (keyof RequestCounters['responses'])[]) {
      addTo(into.responses[method], requests.responses[method]);
    }
    for (const r of rejectReasons) into.rejected[r] += requests.rejected[r] ?? 0;
    into.cors.preflight += requests.cors.preflight;
    into.cors.denied += requests.cors.denied;
    for (const [flavor, c] of p) {
      const mine = privacy.countersOf(flavor);
      addTo(mine.signals, c.signals);
      addTo(mine.bots, c.bots);
      mine.prefetch += c.prefetch;
    }
  }
}
