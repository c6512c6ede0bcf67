/**
 * The public listener: one uWS app whose routes (routes/) share one state
 * (state.ts). A hit goes head.ts → hit.ts → the sink, its answer through
 * reply.ts; a POST body through content-type.ts.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../config.js';
import { rateLimited, type Logger } from '../log.js';
import { PrivacyState } from '../privacy/policy.js';
import { DedupState } from '../dedup/state.js';
import { BodyBudget } from './body.js';
import type { RequestCounters } from './counters.js';
import { makeCors } from './cors.js';
import { OK_GIF_TEXT } from './reply.js';
import { httpSettings, type HttpSettings } from './settings.js';
import type { HttpState, Sink } from './state.js';
import { uws } from './uws.js';
import { health } from './routes/health.js';
import { notFound } from './routes/not-found.js';
import { preflight } from './routes/preflight.js';
import { robots } from './routes/robots.js';
import { trackGet } from './routes/track-get.js';
import { trackPost } from './routes/track-post.js';

export interface Http {
  readonly app: TemplatedApp;
  /** From now on /health answers 503 and every answer closes its connection. */
  drain(): void;
  /** Serve with these settings from the next request on (config reload). */
  configure(config: Config): void;
}

/**
 * The public listener's routes. GET and HEAD answer synchronously inside the
 * handler (uWS corks that part for us); POST reads its body and answers from
 * onData, corked, and never after onAborted.
 */
export function makeHttp(
  config: Config, sink: Sink, counters: RequestCounters, log?: Logger, privacy = new PrivacyState(null),
  /** The process's body budget, shared by every serving thread (body.ts). */
  bodyMemory?: SharedArrayBuffer,
): Http {
  const app = uws().App();
  const settingsOf = (c: Config): HttpSettings => httpSettings(c, makeCors(c.flavors, OK_GIF_TEXT, counters.cors));
  const s: HttpState = {
    settings: settingsOf(config),
    draining: false,
    counters,
    sink,
    privacy,
    dedup: new DedupState(counters.dedup, false), // keys only: the main thread's stores judge them
    budget: new BodyBudget(config.limits.maxBodyBytesInFlight, bodyMemory),
    logError: log === undefined ? null : rateLimited(log),
  };

  app.get('/track', trackGet(s, 'GET'));
  app.head('/track', trackGet(s, 'HEAD'));
  app.post('/track', trackPost(s));
  app.options('/track', preflight(s));
  app.get('/robots.txt', robots(s, 'GET'));
  app.head('/robots.txt', robots(s, 'HEAD'));
  app.get('/health', health(s, 'GET'));
  app.head('/health', health(s, 'HEAD'));
  app.any('/*', notFound(s));

  return {
    app,
    drain() {
      s.draining = true;
    },
    configure(next) {
      s.settings = settingsOf(next);
      s.budget.max = next.limits.maxBodyBytesInFlight;
      s.dedup.retain(next.flavors);
    },
  };
}
