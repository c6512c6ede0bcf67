/**
 * What is observed as it happens rather than read at scrape time: GC pauses
 * (a PerformanceObserver) and event-loop lag (sampled once a second), as
 * prom-client histograms and as the totals /stats shows.
 */
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { Histogram, type Metric } from 'prom-client';

/** GC pauses are mostly well under a millisecond (scavenges) up to tens of ms (mark-compact). */
const gcBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Per-second maximum event-loop delay. */
const lagBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const gcKinds: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export type GcTotals = Record<string, { count: number; seconds_total: number }>;

export interface RuntimeWatch {
  /** gc[kind] = { count, seconds_total } since start. */
  gc(): GcTotals;
  /** Largest event-loop delay over the last completed one-second window. */
  lastLag(): number;
  /** The two histograms, for the caller's registry. */
  readonly metrics: readonly Metric[];
  close(): void;
}

// prom-client's own nodejs_gc_duration_seconds looks at only the first entry
// of each observer batch and has buckets too coarse for scavenges; this one
// counts every pause.
function watchGc(): { histogram: Metric; totals: GcTotals; observer: PerformanceObserver } {
  const gcPause = new Histogram({
    name: 'scratchd_gc_pause_seconds',
    help: 'Garbage-collection pauses by kind (major, minor, incremental, weakcb), in seconds.',
    labelNames: ['kind'] as const,
    buckets: gcBuckets,
    registers: [],
  });
  const totals: GcTotals = {};
  for (const k of Object.values(gcKinds)) {
    totals[k] = { count: 0, seconds_total: 0 };
    gcPause.zero({ kind: k });
  }
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as unknown as { detail?: { kind?: number } }).detail;
      const kind = gcKinds[detail?.kind ?? -1] ?? 'other';
      const s = e.duration / 1000;
      gcPause.observe({ kind }, s);
      const t = (totals[kind] ??= { count: 0, seconds_total: 0 });
      t.count++;
      t.seconds_total += s;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return { histogram: gcPause, totals, observer };
}

// The largest delay libuv's own sampler saw in each second, into a histogram
// (cumulative, so any number of scrapers and the /stats cron can read it
// without resetting each other's view, unlike prom-client's
// nodejs_eventloop_lag_* gauges which reset at every scrape).
function watchLag(): { histogram: Metric; last: () => number; close: () => void } {
  const lag = new Histogram({
    name: 'scratchd_event_loop_lag_seconds',
    help: 'Largest event-loop delay in each one-second window, in seconds.',
    buckets: lagBuckets,
    registers: [],
  });
  let last = 0;
  let delay: IntervalHistogram | null = null;
  try {
    delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
  } catch {
    delay = null; // not available on this runtime: the histogram stays empty
  }
  const timer = setInterval(() => {
    if (delay === null || delay.count === 0) return;
    // The sampler's timer fires every `resolution` ms; what it reports is the
    // delay beyond that.
    last = delay.max / 1e9;
    lag.observe(last);
    delay.reset();
  }, 1000);
  timer.unref();
  return {
    histogram: lag,
    last: () => last,
    close() {
      clearInterval(timer);
      delay?.disable();
    },
  };
}

export function watchRuntime(): RuntimeWatch {
  const gc = watchGc();
  const lag = watchLag();
  return {
    gc() {
      const out: GcTotals = {};
      for (const [k, v] of Object.entries(gc.totals)) out[k] = { count: v.count, seconds_total: v.seconds_total };
      return out;
    },
    lastLag: lag.last,
    metrics: [gc.histogram, lag.histogram],
    close() {
      gc.observer.disconnect();
      lag.close();
    },
  };
}
