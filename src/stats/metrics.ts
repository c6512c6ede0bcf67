/**
 * scratchd's metrics: one prom-client Registry for `GET /metrics` and the same
 * facts as one JSON object for `GET /stats`.
 *
 * The request path and the backends only bump plain numbers
 * (RequestCounters, BackendCounters); everything here reads them when a
 * scrape asks (`collect()` callbacks), so serving a pixel never touches
 * prom-client. The only things observed as they happen are the histograms
 * of GC pauses (PerformanceObserver) and event-loop lag (sampled once a
 * second); the Kafka delivery-latency histogram is the Kafka backend's own
 * plain numbers (src/kafka/latency.ts), read here like every counter.
 *
 * Names follow Prometheus conventions: `scratchd_` prefix, base units
 * (seconds, bytes), `_total` on counters, one label set per family.
 */
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Backend, BackendState } from '../backend.js';
import type { FileStats, FileStatsSource } from '../file/stats.js';
import { LATENCY_BUCKETS } from '../kafka/latency.js';
import { isKafkaStatsSource, type KafkaStatsSource, type SpoolSnapshot } from '../kafka/stats.js';
import type { CountedMethod, RequestCounters } from './counters.js';
import { rejectReasons } from './counters.js';
import type { LossTracker } from '../recovery/losses.js';
import type { PrivacyState } from '../privacy/policy.js';
import { privacySnapshot, registerPrivacyMetrics, type PrivacySnapshot } from './privacy-metrics.js';
import { registerFileMetrics } from './file-metrics.js';
import { registerSpoolMetrics } from './spool-metrics.js';
import { dedupSnapshot, registerDedupMetrics, type DedupSnapshot } from './dedup-metrics.js';

const methods: readonly CountedMethod[] = ['GET', 'HEAD', 'POST', 'OTHER'];
const backendStates: readonly BackendState[] = ['ok', 'degraded', 'spooling', 'down'];

/** GC pauses are mostly well under a millisecond (scavenges) up to tens of ms (mark-compact). */
const gcBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Per-second maximum event-loop delay. */
const lagBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const KAFKA_LATENCY = 'scratchd_kafka_delivery_latency_seconds';

/**
 * The Kafka backend's delivery-latency histogram as prom-client's registry
 * reads any metric: `get()` turns the backend's plain numbers into samples
 * (all zero without a Kafka backend).
 */
function kafkaDeliveryLatency(kafka: KafkaStatsSource | undefined) {
  return {
    name: KAFKA_LATENCY,
    help: 'Time from a Line\'s arrival (its Kafka timestamp) to the delivery report of its message, in seconds.',
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const h = kafka?.deliveryLatency;
      let cumulative = 0;
      const values: { metricName: string; labels: Record<string, number | string>; value: number }[] = LATENCY_BUCKETS.map((le, i) => ({
        metricName: `${KAFKA_LATENCY}_bucket`, labels: { le }, value: (cumulative += h?.counts[i] ?? 0),
      }));
      values.push(
        { metricName: `${KAFKA_LATENCY}_bucket`, labels: { le: '+Inf' }, value: h?.count ?? 0 },
        { metricName: `${KAFKA_LATENCY}_sum`, labels: {}, value: h?.sum ?? 0 },
        { metricName: `${KAFKA_LATENCY}_count`, labels: {}, value: h?.count ?? 0 },
      );
      return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
    },
    reset() {},
  };
}

/** `GET /stats`: every number shallow-nested, so `a.b.c value` makes a Graphite path. */
export interface StatsSnapshot {
  /** Which scratchd this is (config `instance`), when main says. */
  instance?: string;
  /** requests[method][status] = answered requests. */
  requests: Record<string, Record<string, number>>;
  /** rejected[reason], every reason present. */
  rejected: Record<string, number>;
  backends: Record<string, {
    queued: number; persisted: number; failed: number; dropped: number; retried: number;
    /** 1 when healthy, 0.5 degraded, 0 down (Graphite wants numbers). */
    up: number;
  }>;
  kafka_delivery_latency_seconds: { count: number; sum: number };
  /** Loss windows open now and the last ones closed (src/recovery/losses.ts). */
  loss_windows?: ReturnType<LossTracker['snapshot']>;
  /** The Kafka disk spool; absent when there is none. */
  kafka_spool?: SpoolSnapshot;
  process: {
    uptime_seconds: number;
    rss_bytes: number;
    heap_used_bytes: number;
    heap_total_bytes: number;
    external_bytes: number;
    cpu_user_seconds_total: number;
    cpu_system_seconds_total: number;
  };
  /** gc[kind] = { count, seconds_total } since start. */
  gc: Record<string, { count: number; seconds_total: number }>;
  /** Largest event-loop delay over the last completed one-second window. */
  event_loop_lag_seconds: number;
  /** OPTIONS /track preflights answered; requests from an Origin their flavor does not allow. */
  cors: { preflight: number; denied: number };
  /** The file backend's days and per-flavor counts (when it is on). */
  file?: FileStats;
  /** Per flavor: what its privacy and bot rules did (only flavors that met one). */
  privacy?: PrivacySnapshot;
  /** Per flavor with dedup on: duplicate hits not recorded, keys evicted by the bound. */
  dedup: DedupSnapshot;
  /** Per serving thread: event-loop utilization (last seconds) and relay bytes not yet taken by the main thread. */
  threads: { utilization: number; relay_bytes: number }[];
}

export interface ScratchdMetrics {
  readonly registry: Registry;
  statsSnapshot(): StatsSnapshot;
  /** Bring the counters up to date (the serving threads' summed) before a snapshot or a scrape. */
  refresh(): Promise<void>;
  /** Stop the GC observer and the lag sampler (tests; main at exit). */
  close(): void;
}

const gcKinds: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface MetricsOptions {
  /** Include prom-client's process and Node.js default metrics (default true). */
  defaultMetrics?: boolean;
  /** The loss-window tracker main installs as every backend's onLoss. */
  losses?: LossTracker;
  /** What the flavors' privacy and bot rules did. */
  privacy?: PrivacyState;
  /** The version and instance name: `scratchd_build_info` and /stats' `instance`. */
  build?: { version: string; instance: string };
  /** Sums the serving threads' counters into `counters` (threads/sum.ts). */
  refresh?: () => Promise<void>;
  /** Each serving thread: event-loop utilization and relay bytes not yet taken. */
  threads?: () => readonly ThreadView[];
}

/** What /stats and /metrics show of a serving thread. */
export interface ThreadView {
  utilization: number;
  relayBytes: number;
}

/** Build the registry and the JSON view over the given counters and backends. */
export function createMetrics(
  counters: RequestCounters,
  backends: readonly Backend[],
  options: MetricsOptions = {},
): ScratchdMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const build = options.build;
  if (build !== undefined) {
    // Constant 1: the labels are the facts (a join key for every other series of this instance).
    new Gauge({
      name: 'scratchd_build_info',
      help: 'Always 1; labels: the scratchd version and this instance\'s name (config instance).',
      labelNames: ['version', 'instance'] as const,
      registers: [registry],
    }).set({ version: build.version, instance: build.instance }, 1);
  }

  // Counters read from the plain numbers at scrape time: reset, then set by
  // inc() from zero. prom-client Counters have no set(); this keeps the TYPE
  // line `counter` and stays monotonic because the sources are.
  new Counter({
    name: 'scratchd_requests_total',
    help: 'Answered requests on the public listener, by method (GET, HEAD, POST, OTHER) and status code.',
    labelNames: ['method', 'status'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const m of methods) {
        for (const [status, n] of counters.responses[m]) this.inc({ method: m, status: String(status) }, n);
      }
    },
  });
  new Counter({
    name: 'scratchd_rejected_total',
    help: 'Requests refused before reaching a backend, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rejectReasons) this.inc({ reason: r }, counters.rejected[r]);
    },
  });

  new Counter({
    name: 'scratchd_cors_preflight_total',
    help: 'CORS preflights (OPTIONS /track) answered.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.cors.preflight);
    },
  });
  new Counter({
    name: 'scratchd_cors_denied_total',
    help: 'Requests to /track from an Origin their flavor does not allow (answered without CORS headers).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.cors.denied);
    },
  });

  const perBackend = (
    name: string,
    help: string,
    read: (b: Backend) => number,
  ): void => {
    new Counter({
      name, help, labelNames: ['backend'] as const, registers: [registry],
      collect() {
        this.reset();
        for (const b of backends) this.inc({ backend: b.name }, read(b));
      },
    });
  };
  new Gauge({
    name: 'scratchd_backend_queued_lines',
    help: 'Lines accepted by a backend and not yet persisted or dropped.',
    labelNames: ['backend'] as const,
    registers: [registry],
    collect() {
      for (const b of backends) this.set({ backend: b.name }, b.queued());
    },
  });
  perBackend('scratchd_backend_persisted_lines_total',
    'Lines durably handed over by a backend (written to a file, acknowledged by Kafka).', (b) => b.counters.persisted);
  perBackend('scratchd_backend_failures_total',
    'Failed write or delivery attempts by a backend; the Lines may still succeed on retry.', (b) => b.counters.failed);
  perBackend('scratchd_backend_dropped_lines_total',
    'Lines a backend gave up on (queue full, or retries exhausted at shutdown).', (b) => b.counters.dropped);
  perBackend('scratchd_backend_retries_total',
    'Retries by a backend after a failure.', (b) => b.counters.retried);
  new Gauge({
    name: 'scratchd_backend_state',
    help: 'Backend health: 1 for the state the backend is in (ok, degraded, down), 0 for the others.',
    labelNames: ['backend', 'state'] as const,
    registers: [registry],
    collect() {
      for (const b of backends) {
        const s = b.health().state;
        for (const st of backendStates) this.set({ backend: b.name, state: st }, s === st ? 1 : 0);
      }
    },
  });

  const kafka = backends.find((b): b is Backend & KafkaStatsSource => isKafkaStatsSource(b));
  registry.registerMetric(kafkaDeliveryLatency(kafka) as unknown as Histogram);
  if (kafka !== undefined) registerSpoolMetrics(registry, kafka);

  const losses = options.losses;
  if (options.privacy !== undefined) registerPrivacyMetrics(registry, options.privacy);
  registerDedupMetrics(registry, counters.dedup);
  new Counter({
    name: 'scratchd_loss_windows_total',
    help: 'Loss windows opened (a backend started giving up on Lines of a flavor), by backend and flavor.',
    labelNames: ['backend', 'flavor'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const w of losses?.windowsTotal() ?? []) this.inc({ backend: w.backend, flavor: w.flavor }, w.count);
    },
  });
  const fileBackend = backends.find((b) => typeof (b as Partial<FileStatsSource>).fileStats === 'function') as
    (Backend & FileStatsSource) | undefined;
  if (fileBackend !== undefined) registerFileMetrics(registry, fileBackend);

  // GC pauses. prom-client's own nodejs_gc_duration_seconds looks at only the
  // first entry of each observer batch and has buckets too coarse for
  // scavenges; this one counts every pause.
  const gcPause = new Histogram({
    name: 'scratchd_gc_pause_seconds',
    help: 'Garbage-collection pauses by kind (major, minor, incremental, weakcb), in seconds.',
    labelNames: ['kind'] as const,
    buckets: gcBuckets,
    registers: [registry],
  });
  const gcTotals: Record<string, { count: number; seconds_total: number }> = {};
  for (const k of Object.values(gcKinds)) {
    gcTotals[k] = { count: 0, seconds_total: 0 };
    gcPause.zero({ kind: k });
  }
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as unknown as { detail?: { kind?: number } }).detail;
      const kind = gcKinds[detail?.kind ?? -1] ?? 'other';
      const s = e.duration / 1000;
      gcPause.observe({ kind }, s);
      const t = (gcTotals[kind] ??= { count: 0, seconds_total: 0 });
      t.count++;
      t.seconds_total += s;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });

  // Event-loop lag: the largest delay libuv's own sampler saw in each second,
  // into a histogram (cumulative, so any number of scrapers and the /stats
  // cron can read it without resetting each other's view, unlike prom-client's
  // nodejs_eventloop_lag_* gauges which reset at every scrape).
  const lag = new Histogram({
    name: 'scratchd_event_loop_lag_seconds',
    help: 'Largest event-loop delay in each one-second window, in seconds.',
    buckets: lagBuckets,
    registers: [registry],
  });
  let lastLag = 0;
  let delay: IntervalHistogram | null = null;
  try {
    delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
  } catch {
    delay = null; // not available on this runtime: the histogram stays empty
  }
  const lagTimer = setInterval(() => {
    if (delay === null || delay.count === 0) return;
    // The sampler's timer fires every `resolution` ms; what it reports is the
    // delay beyond that.
    lastLag = delay.max / 1e9;
    lag.observe(lastLag);
    delay.reset();
  }, 1000);
  lagTimer.unref();

  const statsSnapshot = (): StatsSnapshot => {
    const requests: StatsSnapshot['requests'] = {};
    for (const m of methods) {
      const by: Record<string, number> = {};
      for (const [status, n] of counters.responses[m]) by[String(status)] = n;
      requests[m] = by;
    }
    const rejected: Record<string, number> = {};
    for (const r of rejectReasons) rejected[r] = counters.rejected[r];
    const bs: StatsSnapshot['backends'] = {};
    for (const b of backends) {
      const s = b.health().state;
      bs[b.name] = {
        queued: b.queued(),
        persisted: b.counters.persisted,
        failed: b.counters.failed,
        dropped: b.counters.dropped,
        retried: b.counters.retried,
        up: s === 'ok' ? 1 : s === 'down' ? 0 : 0.5,
      };
    }
    const spool = kafka?.spoolSnapshot();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const gc: StatsSnapshot['gc'] = {};
    for (const [k, v] of Object.entries(gcTotals)) gc[k] = { count: v.count, seconds_total: v.seconds_total };
    return {
      ...(build === undefined ? {} : { instance: build.instance }),
      requests,
      rejected,
      cors: { preflight: counters.cors.preflight, denied: counters.cors.denied },
      backends: bs,
      kafka_delivery_latency_seconds: { count: kafka?.deliveryLatency.count ?? 0, sum: kafka?.deliveryLatency.sum ?? 0 },
      ...(spool !== null && spool !== undefined ? { kafka_spool: spool } : {}),
      process: {
        uptime_seconds: process.uptime(),
        rss_bytes: mem.rss,
        heap_used_bytes: mem.heapUsed,
        heap_total_bytes: mem.heapTotal,
        external_bytes: mem.external,
        cpu_user_seconds_total: cpu.user / 1e6,
        cpu_system_seconds_total: cpu.system / 1e6,
      },
      gc,
      event_loop_lag_seconds: lastLag,
      ...(losses !== undefined ? { loss_windows: losses.snapshot() } : {}),
      ...(fileBackend === undefined ? {} : { file: fileBackend.fileStats() }),
      ...(options.privacy === undefined ? {} : { privacy: privacySnapshot(options.privacy) }),
      dedup: dedupSnapshot(counters.dedup),
      threads: (options.threads?.() ?? []).map((t) => ({ utilization: t.utilization, relay_bytes: t.relayBytes })),
    };
  };

  const threadGauge = (name: string, help: string, read: (t: ThreadView) => number): void => {
    new Gauge({
      name, help, labelNames: ['thread'] as const, registers: [registry],
      collect() {
        this.reset();
        (options.threads?.() ?? []).forEach((t, i) => this.set({ thread: String(i) }, read(t)));
      },
    });
  };
  threadGauge('scratchd_thread_event_loop_utilization', 'Event-loop utilization of each serving thread over the last seconds, 0..1.', (t) => t.utilization);
  threadGauge('scratchd_relay_bytes', 'Bytes of Lines each serving thread relayed that the main thread has not taken yet.', (t) => t.relayBytes);

  return {
    registry,
    statsSnapshot,
    refresh: options.refresh ?? (() => Promise.resolve()),
    close() {
      gcObserver.disconnect();
      clearInterval(lagTimer);
      delay?.disable();
    },
  };
}
