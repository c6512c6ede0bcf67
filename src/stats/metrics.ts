/**
 * scratchd's numbers, read once per scrape into one snapshot (as nsqd's
 * GetStats() feeds both its HTTP stats and statsd): `GET /stats` serves the
 * snapshot as JSON, and every `GET /metrics` family is a table row that
 * reads its samples from the same snapshot.
 *
 * The request path and the backends only bump plain numbers
 * (RequestCounters, BackendCounters); the snapshot reads them when a scrape
 * asks, so serving a pixel never touches prom-client. The only things
 * observed as they happen are GC pauses and event-loop lag (runtime.ts); the
 * Kafka delivery-latency histogram is the Kafka backend's own plain numbers
 * (src/kafka/latency.ts), read here like every counter.
 *
 * Names follow Prometheus conventions: `scratchd_` prefix, base units
 * (seconds, bytes), `_total` on counters, one label set per family.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Backend } from '../backend.js';
import type { FileStats, FileStatsSource } from '../file/stats.js';
import { LATENCY_BUCKETS } from '../kafka/latency.js';
import { isKafkaStatsSource, type KafkaStatsSource, type SpoolSnapshot } from '../kafka/stats.js';
import type { LossTracker } from '../losses.js';
import type { PrivacyState } from '../privacy/policy.js';
import type { RequestCounters } from '../http/counters.js';
import { backendFamilies, backendsSnapshot, type BackendSnapshot, type BackendsSnapshot } from './backend-metrics.js';
import { dedupFamilies, dedupSnapshot, type DedupSnapshot } from './dedup-metrics.js';
import { registerFamilies, type Family, type Sample } from './family.js';
import { fileFamilies } from './file-metrics.js';
import { privacyFamilies, privacySnapshot, type PrivacySnapshot } from './privacy-metrics.js';
import { requestFamilies, requestsSnapshot, type RequestsSnapshot } from './request-metrics.js';
import { watchRuntime, type GcTotals, type RuntimeWatch } from './runtime.js';
import { spoolFamilies } from './spool-metrics.js';

/** `GET /stats`: every number shallow-nested, so `a.b.c value` makes a Graphite path. */
export interface StatsSnapshot extends RequestsSnapshot {
  /** Which scratchd this is (config `instance`), when main says. */
  instance?: string;
  backends: Record<string, BackendSnapshot>;
  kafka_delivery_latency_seconds: { count: number; sum: number };
  /** Loss windows open now and the last ones closed (src/losses.ts). */
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
  gc: GcTotals;
  /** Largest event-loop delay over the last completed one-second window. */
  event_loop_lag_seconds: number;
  /** The file backend's days and per-flavor counts (when it is on). */
  file?: FileStats;
  /** Per flavor: what its privacy and bot rules did (only flavors that met one). */
  privacy?: PrivacySnapshot;
  /** Per flavor with dedup on: duplicate hits not recorded, keys evicted by the bound. */
  dedup: DedupSnapshot;
  /** Per serving thread: event-loop utilization (last seconds) and relay bytes not yet taken by the main thread. */
  threads: { utilization: number; relay_bytes: number }[];
}

/** One reading of every number: /stats serves `stats`; /metrics also shows the few facts /stats leaves out. */
interface Snapshot {
  stats: StatsSnapshot;
  backends: BackendsSnapshot;
  /** Kafka delivery reports per latency bucket (not cumulative; the last above every bound); empty without Kafka. */
  latencyCounts: readonly number[];
  /** Loss windows opened, by backend and flavor. */
  lossWindows: ReturnType<LossTracker['windowsTotal']>;
}

export interface ScratchdMetrics {
  readonly registry: Registry;
  statsSnapshot(): StatsSnapshot;
  /** Bring the counters up to date (the serving threads' summed) before a snapshot or a scrape. */
  refresh(): Promise<void>;
  /** Stop the GC observer and the lag sampler (tests; main at exit). */
  close(): void;
}

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

/** Where a snapshot reads its numbers. */
interface Sources {
  counters: RequestCounters;
  backends: readonly Backend[];
  kafka: KafkaStatsSource | undefined;
  file: FileStatsSource | undefined;
  runtime: RuntimeWatch;
  options: MetricsOptions;
}

function processSnapshot(): StatsSnapshot['process'] {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    uptime_seconds: process.uptime(),
    rss_bytes: mem.rss,
    heap_used_bytes: mem.heapUsed,
    heap_total_bytes: mem.heapTotal,
    external_bytes: mem.external,
    cpu_user_seconds_total: cpu.user / 1e6,
    cpu_system_seconds_total: cpu.system / 1e6,
  };
}

function takeSnapshot(src: Sources): Snapshot {
  const { kafka, options } = src;
  const backends = backendsSnapshot(src.backends);
  const spool = kafka?.spoolSnapshot();
  const stats: StatsSnapshot = {
    ...(options.build === undefined ? {} : { instance: options.build.instance }),
    ...requestsSnapshot(src.counters),
    backends: backends.stats,
    kafka_delivery_latency_seconds: { count: kafka?.deliveryLatency.count ?? 0, sum: kafka?.deliveryLatency.sum ?? 0 },
    ...(spool !== null && spool !== undefined ? { kafka_spool: spool } : {}),
    process: processSnapshot(),
    gc: src.runtime.gc(),
    event_loop_lag_seconds: src.runtime.lastLag(),
    ...(options.losses === undefined ? {} : { loss_windows: options.losses.snapshot() }),
    ...(src.file === undefined ? {} : { file: src.file.fileStats() }),
    ...(options.privacy === undefined ? {} : { privacy: privacySnapshot(options.privacy) }),
    dedup: dedupSnapshot(src.counters.dedup),
    threads: (options.threads?.() ?? []).map((t) => ({ utilization: t.utilization, relay_bytes: t.relayBytes })),
  };
  return {
    stats,
    backends,
    latencyCounts: kafka === undefined ? [] : [...kafka.deliveryLatency.counts],
    lossWindows: options.losses?.windowsTotal() ?? [],
  };
}

const KAFKA_LATENCY = 'scratchd_kafka_delivery_latency_seconds';

/** The Kafka backend's delivery-latency buckets as a Prometheus histogram (all zero without Kafka). */
function latencySamples(s: Snapshot): Sample[] {
  let cumulative = 0;
  const { count, sum } = s.stats.kafka_delivery_latency_seconds;
  return [
    ...LATENCY_BUCKETS.map((le, i) => ({ metricName: `${KAFKA_LATENCY}_bucket`, labels: { le }, value: (cumulative += s.latencyCounts[i] ?? 0) })),
    { metricName: `${KAFKA_LATENCY}_bucket`, labels: { le: '+Inf' }, value: count },
    { metricName: `${KAFKA_LATENCY}_sum`, labels: {}, value: sum },
    { metricName: `${KAFKA_LATENCY}_count`, labels: {}, value: count },
  ];
}

const latencyFamily: Family<Snapshot> = {
  name: KAFKA_LATENCY,
  help: 'Time from a Line\'s arrival (its Kafka timestamp) to the delivery report of its message, in seconds.',
  type: 'histogram',
  read: latencySamples,
};

const lossFamily: Family<Snapshot> = {
  name: 'scratchd_loss_windows_total',
  help: 'Loss windows opened (a backend started giving up on Lines of a flavor), by backend and flavor.',
  type: 'counter',
  read: (s) => s.lossWindows.map((w) => ({ labels: { backend: w.backend, flavor: w.flavor }, value: w.count })),
};

const threadFamily = (name: string, help: string, read: (t: StatsSnapshot['threads'][number]) => number): Family<Snapshot> =>
  ({ name, help, type: 'gauge', read: (s) => s.stats.threads.map((t, i) => ({ labels: { thread: String(i) }, value: read(t) })) });

const threadFamilies = [
  threadFamily('scratchd_thread_event_loop_utilization', 'Event-loop utilization of each serving thread over the last seconds, 0..1.', (t) => t.utilization),
  threadFamily('scratchd_relay_bytes', 'Bytes of Lines each serving thread relayed that the main thread has not taken yet.', (t) => t.relay_bytes),
];

function buildFamily(build: { version: string; instance: string }): Family<Snapshot> {
  // Constant 1: the labels are the facts (a join key for every other series of this instance).
  return {
    name: 'scratchd_build_info',
    help: 'Always 1; labels: the scratchd version and this instance\'s name (config instance).',
    type: 'gauge',
    read: () => [{ labels: { version: build.version, instance: build.instance }, value: 1 }],
  };
}

/**
 * One snapshot per scrape: prom-client calls every family's get() in one
 * synchronous pass before awaiting any, so they all read the snapshot the
 * first one took; it is dropped before anything else runs.
 */
function snapshotPerScrape(take: () => Snapshot): () => Snapshot {
  let cached: Snapshot | null = null;
  return () => {
    if (cached === null) {
      cached = take();
      queueMicrotask(() => { cached = null; });
    }
    return cached;
  };
}

/** Build the registry and the JSON view over the given counters and backends. */
export function createMetrics(
  counters: RequestCounters,
  backends: readonly Backend[],
  options: MetricsOptions = {},
): ScratchdMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const kafka = backends.find((b): b is Backend & KafkaStatsSource => isKafkaStatsSource(b));
  const file = backends.find((b) => typeof (b as Partial<FileStatsSource>).fileStats === 'function') as
    (Backend & FileStatsSource) | undefined;
  const runtime = watchRuntime();
  const current = snapshotPerScrape(() => takeSnapshot({ counters, backends, kafka, file, runtime, options }));
  const stats = (): StatsSnapshot => current().stats;

  const add = <S>(families: readonly Family<S>[], read: () => S): void => registerFamilies(registry, families, read);
  if (options.build !== undefined) add([buildFamily(options.build)], current);
  add(requestFamilies, stats);
  add(backendFamilies, () => current().backends);
  add([latencyFamily], current);
  if (kafka !== undefined) add(spoolFamilies, () => stats().kafka_spool ?? null);
  if (options.privacy !== undefined) add(privacyFamilies, () => stats().privacy ?? {});
  add(dedupFamilies, () => stats().dedup);
  add([lossFamily], current);
  if (file !== undefined) add(fileFamilies, () => stats().file!);
  for (const m of runtime.metrics) registry.registerMetric(m);
  add(threadFamilies, current);

  return {
    registry,
    statsSnapshot: stats,
    refresh: options.refresh ?? (() => Promise.resolve()),
    close: () => runtime.close(),
  };
}
