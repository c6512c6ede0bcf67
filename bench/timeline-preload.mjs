// Bench-only preload for the latency timeline (bench/timeline.mjs), with
// `node --import`: records, in Unix-epoch milliseconds, every GC pause
// (start, duration, kind) and every FileHandle.write, the file backend's
// batch writes (start on the event loop, end when its promise settles, bytes),
// and writes them as JSON to $SCRATCHD_BENCH_TIMELINE at exit. SIGUSR2 forgets
// what was recorded so far (the driver sends it after the warm-up). Not part
// of scratchd.
//
// With SCRATCHD_BENCH_TIMELINE_KAFKA=<scratchd's directory> it also records node-rdkafka's
// delivery reports as bursts (start, end, reports): librdkafka hands them to
// the event loop a poll at a time and node-rdkafka emits one event per
// message, so a burst is one stretch of the loop spent on reports. This adds
// a clock read per report, in the timeline run only.
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { promises as fs, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const out = process.env.SCRATCHD_BENCH_TIMELINE;
const origin = performance.timeOrigin;
const kinds = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
let gc = [];
let writes = [];
let reports = [];

const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gc.push([origin + e.startTime, e.duration, kinds[e.detail?.kind] ?? 'other']);
});
obs.observe({ entryTypes: ['gc'] });

// FileHandle is not exported: take its prototype from a handle.
const probe = await fs.open('/dev/null', 'r');
const proto = Object.getPrototypeOf(probe);
await probe.close();
const write = proto.write;
proto.write = function timedWrite(buffer, ...rest) {
  const start = origin + performance.now();
  const p = write.call(this, buffer, ...rest);
  const bytes = typeof buffer === 'string' ? Buffer.byteLength(buffer) : (rest[1] ?? buffer.length - (rest[0] ?? 0));
  const done = () => writes.push([start, origin + performance.now(), bytes]);
  p.then(done, done);
  return p;
};

if (process.env.SCRATCHD_BENCH_TIMELINE_KAFKA) {
  // scratchd imports node-rdkafka (CommonJS) from its own node_modules, which
  // the variable names: the same module instance.
  const Kafka = createRequire(`${process.env.SCRATCHD_BENCH_TIMELINE_KAFKA}/`)('node-rdkafka');
  const emit = Kafka.Producer.prototype.emit;
  let burst = null;
  Kafka.Producer.prototype.emit = function timedEmit(event, ...args) {
    if (event !== 'delivery-report') return emit.call(this, event, ...args);
    const start = origin + performance.now();
    const r = emit.call(this, event, ...args);
    const end = origin + performance.now();
    // Reports less than 20 µs apart belong to the same poll.
    if (burst !== null && start - burst[1] < 0.02) {
      burst[1] = end;
      burst[2]++;
    } else {
      burst = [start, end, 1];
      reports.push(burst);
    }
    return r;
  };
}

if (out) {
  process.on('SIGUSR2', () => {
    obs.takeRecords();
    gc = [];
    writes = [];
    reports = [];
  });
  process.on('exit', () => {
    for (const e of obs.takeRecords()) gc.push([origin + e.startTime, e.duration, kinds[e.detail?.kind] ?? 'other']);
    writeFileSync(out, JSON.stringify({ gc, writes, reports }));
  });
}
