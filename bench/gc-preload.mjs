// Bench-only preload (node --import): records every GC pause with a
// PerformanceObserver and writes a summary as JSON to $SCRATCHD_BENCH_GC at
// exit. SIGUSR2 writes the summary so far to $SCRATCHD_BENCH_GC.<n> (n = 0,
// 1, …) and starts over, so the runner can split warm-up, maximum load and
// paced load. Not part of scratchd.
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const out = process.env.SCRATCHD_BENCH_GC;
const kinds = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
let pauses = [];
let byKind = {};
let since = performance.now();
let splits = 0;

function record(entries) {
  for (const e of entries) {
    pauses.push(e.duration);
    const k = kinds[e.detail?.kind] ?? 'other';
    const s = (byKind[k] ??= { count: 0, totalMs: 0, maxMs: 0 });
    s.count++;
    s.totalMs += e.duration;
    if (e.duration > s.maxMs) s.maxMs = e.duration;
  }
}
const obs = new PerformanceObserver((list) => record(list.getEntries()));
obs.observe({ entryTypes: ['gc'] });

function summary() {
  record(obs.takeRecords());
  const sorted = pauses.slice().sort((a, b) => a - b);
  const pct = (p) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
  return {
    count: sorted.length,
    totalMs: sorted.reduce((a, b) => a + b, 0),
    maxMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1],
    p50Ms: pct(50),
    p99Ms: pct(99),
    over5ms: sorted.filter((d) => d > 5).length,
    wallMs: performance.now() - since,
    byKind,
    memory: process.memoryUsage(),
    spaces: Object.fromEntries(getHeapSpaceStatistics().map((h) => [h.space_name, Math.round(h.space_size / 1024) + ' KiB'])),
  };
}

if (out) {
  process.on('SIGUSR2', () => {
    writeFileSync(`${out}.${splits++}`, JSON.stringify(summary()));
    pauses = [];
    byKind = {};
    since = performance.now();
  });
  process.on('exit', () => writeFileSync(out, JSON.stringify(summary())));
}
