/**
 * Crawlers and prefetches: neither is a visitor's hit.
 *
 * Bots are told by their User-Agent with `isbot` (a maintained pattern list,
 * headless Chrome included). Its one large regular expression costs
 * microseconds, so verdicts are remembered per User-Agent: a site sees few
 * distinct ones; the map is cleared whole when full, so varied User-Agents
 * cannot grow it.
 *
 * A prefetch (a browser loading the page ahead of a click that may never come)
 * says so in a header: `Sec-Purpose: prefetch` (and the older `Purpose`),
 * `X-Purpose: preview` (Safari's top sites), `X-Moz: prefetch` (Firefox).
 */
import { isbot } from 'isbot';

const REMEMBERED = 2048;
const verdicts = new Map<string, boolean>();

/** `isbot` for a non-empty User-Agent, remembered. */
export function isBot(userAgent: string): boolean {
  let v = verdicts.get(userAgent);
  if (v === undefined) {
    v = isbot(userAgent);
    if (verdicts.size >= REMEMBERED) verdicts.clear();
    verdicts.set(userAgent, v);
  }
  return v;
}

export function isPrefetch(secPurpose: string, purpose: string, xPurpose: string, xMoz: string): boolean {
  return /\bprefetch\b/i.test(secPurpose) || /\bprefetch\b/i.test(purpose)
    || xPurpose.trim().toLowerCase() === 'preview' || xMoz.trim().toLowerCase() === 'prefetch';
}
