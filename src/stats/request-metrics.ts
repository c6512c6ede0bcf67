/** The request path's counters (http/counters.ts) in /stats `requests`, `rejected`, `cors`, and from there in /metrics. */
import type { CountedMethod, RequestCounters } from '../http/counters.js';
import { rejectReasons } from '../http/reject.js';
import { one, type Family } from './family.js';

const methods: readonly CountedMethod[] = ['GET', 'HEAD', 'POST', 'OTHER'];

export interface RequestsSnapshot {
  /** requests[method][status] = answered requests. */
  requests: Record<string, Record<string, number>>;
  /** rejected[reason], every reason present. */
  rejected: Record<string, number>;
  /** OPTIONS /track preflights answered; requests from an Origin their flavor does not allow. */
  cors: { preflight: number; denied: number };
}

export function requestsSnapshot(counters: RequestCounters): RequestsSnapshot {
  const requests: RequestsSnapshot['requests'] = {};
  for (const m of methods) {
    const by: Record<string, number> = {};
    for (const [status, n] of counters.responses[m]) by[String(status)] = n;
    requests[m] = by;
  }
  const rejected: Record<string, number> = {};
  for (const r of rejectReasons) rejected[r] = counters.rejected[r];
  return { requests, rejected, cors: { preflight: counters.cors.preflight, denied: counters.cors.denied } };
}

export const requestFamilies: readonly Family<RequestsSnapshot>[] = [
  {
    name: 'scratchd_requests_total',
    help: `Answered requests on the public listener, by method (${methods.join(', ')}) and status code.`,
    type: 'counter',
    read: (s) => Object.entries(s.requests).flatMap(([method, by]) =>
      Object.entries(by).map(([status, value]) => ({ labels: { method, status }, value }))),
  },
  {
    name: 'scratchd_rejected_total',
    help: 'Requests refused before reaching a backend, by reason.',
    type: 'counter',
    read: (s) => Object.entries(s.rejected).map(([reason, value]) => ({ labels: { reason }, value })),
  },
  {
    name: 'scratchd_cors_preflight_total',
    help: 'CORS preflights (OPTIONS /track) answered.',
    type: 'counter',
    read: (s) => one(s.cors.preflight),
  },
  {
    name: 'scratchd_cors_denied_total',
    help: 'Requests to /track from an Origin their flavor does not allow (answered without CORS headers).',
    type: 'counter',
    read: (s) => one(s.cors.denied),
  },
];
