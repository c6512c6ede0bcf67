/**
 * The internal stats listener (`stats.listen`, default 127.0.0.1:8097): its
 * own uWS app and listen socket, never the public one.
 *
 *   GET /metrics  Prometheus text exposition (registry.contentType)
 *   GET /stats    the same facts as one JSON object (cron -> Graphite)
 *   GET /health   {"status":"ok"|"draining","backends":{name:{state,reason?}}}
 *                 200 while serving and no backend is down (degraded is 200:
 *                 the backend is retrying and may recover on its own);
 *                 503 while draining or when any backend is down.
 *
 * HEAD is answered like GET without a body. Other methods on these paths:
 * 405 with Allow. Anything else: 404.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { rateLimited, type Logger } from '../log.js';
import type { Registry } from 'prom-client';
import type { Backend, BackendHealth } from '../backend.js';
import { statusText } from '../http/reject.js';
import { notify } from '../http/activation.js';
import { listenOn } from '../http/listen.js';
import { uws } from '../http/uws.js';

export interface HealthReport {
  status: 'ok' | 'draining';
  backends: Record<string, BackendHealth>;
}

/** The usual health function: main passes `() => healthReport(draining, backends)`. */
export function healthReport(draining: boolean, backends: readonly Backend[]): HealthReport {
  const bs: Record<string, BackendHealth> = {};
  for (const b of backends) {
    const h = b.health();
    bs[b.name] = h.reason === undefined ? { state: h.state } : { state: h.state, reason: h.reason };
  }
  return { status: draining ? 'draining' : 'ok', backends: bs };
}

/** 503 while draining or when any backend is down, else 200. */
function healthStatusCode(h: HealthReport): 200 | 503 {
  if (h.status !== 'ok') return 503;
  for (const b of Object.values(h.backends)) if (b.state === 'down') return 503;
  return 200;
}

export interface StatsServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stop listening and close open connections. Idempotent. */
  close(): void;
}

/** What the listener serves: a ScratchdMetrics (stats/metrics.ts) fits. */
export interface MetricsSource {
  readonly registry: Registry;
  /** The /stats object. */
  statsSnapshot(): unknown;
  /** Called before each /stats and /metrics answer. */
  refresh(): Promise<void>;
}

const routes = new Set(['/metrics', '/stats', '/health']);

/** Write one whole answer; HEAD gets the headers and the length a GET would have. */
function send(res: HttpResponse, head: boolean, status: number, type: string, body: string,
  extra?: Record<string, string>): void {
  res.writeStatus(statusText[status] ?? String(status));
  res.writeHeader('Content-Type', type);
  res.writeHeader('Cache-Control', 'no-store');
  if (extra) for (const [k, v] of Object.entries(extra)) res.writeHeader(k, v);
  if (head) {
    // uWS writes Content-Length itself for end(); for HEAD announce the
    // length the GET would have without sending the bytes.
    res.endWithoutBody(Buffer.byteLength(body));
  } else {
    res.end(body);
  }
}

/** GET /health: a throwing backend must cost an answer, not the process. */
function answerHealth(res: HttpResponse, head: boolean, health: () => HealthReport, log: Logger): void {
  let status: number;
  let body: string;
  try {
    const h = health();
    status = healthStatusCode(h);
    body = JSON.stringify(h) + '\n';
  } catch (err) {
    log.error({ err, url: '/health' }, 'stats request failed');
    send(res, head, 500, 'text/plain; charset=utf-8', 'internal error\n');
    return;
  }
  send(res, head, status, 'application/json', body);
}

/**
 * GET /stats and /metrics: the serving threads' counters are asked for
 * first, and prom-client collects asynchronously. Register the abort
 * handler before awaiting, never touch res after it fired, and cork the
 * late answer. (A throwing collect() or snapshot becomes a rejection.)
 */
function answerScrape(res: HttpResponse, head: boolean, url: string, metrics: MetricsSource, log: Logger): void {
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  const stats = url === '/stats';
  const registry = metrics.registry;
  metrics.refresh().then(() => (stats ? JSON.stringify(metrics.statsSnapshot()) + '\n' : registry.metrics())).then(
    (text) => {
      if (aborted) return;
      res.cork(() => send(res, head, 200, stats ? 'application/json' : registry.contentType, text));
    },
    (err: unknown) => {
      log.error({ err, url }, stats ? 'stats request failed' : 'collecting metrics failed');
      if (aborted) return;
      res.cork(() => send(res, head, 500, 'text/plain; charset=utf-8', stats ? 'internal error\n' : 'collecting metrics failed\n'));
    },
  );
}

/**
 * Start the stats listener. Resolves once it is listening; rejects with a
 * one-line reason when it cannot bind (address in use, not local, ...).
 */
export function startStatsServer(
  listen: string,
  metrics: MetricsSource,
  health: () => HealthReport,
  log: Logger,
): Promise<StatsServer> {
  const app = uws().App();
  app.any('/*', (res, req) => {
    const method = req.getMethod(); // lower case in uWS
    const url = req.getUrl();
    const head = method === 'head';
    if (!routes.has(url)) send(res, head, 404, 'text/plain; charset=utf-8', 'not found\n');
    else if (method !== 'get' && !head) send(res, false, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    else if (url === '/health') answerHealth(res, head, health, log);
    else answerScrape(res, head, url, metrics, log);
  });

  return listenOn(app, listen, log).then((listening) => {
    if (listening === null) {
      app.close();
      throw new Error(`stats listener: cannot listen on ${listen} (address in use, not local, or not permitted)`);
    }
    log.info({ listen, port: listening.port }, 'stats listener ready');
    let closed = false;
    return {
      port: listening.port,
      close() {
        if (closed) return;
        closed = true;
        listening.close();
        app.close(); // also ends kept-alive connections, so nothing holds the loop
      },
    };
  });
}

/** Retry delays for a stats listener that cannot bind: doubling from first to max. */
export interface BindRetry { firstMs: number; maxMs: number }

/**
 * The stats listener for the daemon: like startStatsServer, but a failed
 * bind (another exporter on the port, an address not yet up) never stops
 * the beacons. It is logged as an error (at most every few minutes while it
 * lasts), shown in `systemctl status` (sd_notify STATUS=), and retried
 * with a doubling delay until it binds or close() is called. Resolves once
 * the first attempt is over: a listener that binds at once is ready when
 * the daemon says it serves.
 */
export async function serveStats(
  listen: string,
  metrics: MetricsSource,
  health: () => HealthReport,
  log: Logger,
  retry: BindRetry = { firstMs: 1000, maxMs: 30_000 },
): Promise<StatsServer> {
  let server: StatsServer | null = null;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let failures = 0;
  const bindError = rateLimited(log, 5 * 60_000);
  const attempt = async (): Promise<void> => {
    try {
      const s = await startStatsServer(listen, metrics, health, log);
      if (closed) return s.close();
      server = s;
      if (failures > 0) {
        log.warn({ listen, failures }, 'stats listener bound at last; /metrics, /stats and /health are served');
        notify(log, 'STATUS=');
      }
    } catch (err) {
      if (closed) return;
      const delayMs = Math.min(retry.firstMs * 2 ** Math.min(failures, 30), retry.maxMs);
      failures++;
      bindError('stats-bind', { listen, failures, retryInMs: delayMs },
        `${(err as Error).message}: beacons are served, but not /metrics, /stats or /health; retrying`);
      notify(log, `STATUS=stats listener cannot listen on ${listen}; retrying (beacons are served)`);
      timer = setTimeout(() => void attempt(), delayMs);
      timer.unref(); // the public listener keeps the daemon alive, not this
    }
  };
  await attempt();
  return {
    get port() {
      return server?.port ?? 0;
    },
    close() {
      closed = true;
      clearTimeout(timer);
      server?.close();
    },
  };
}
