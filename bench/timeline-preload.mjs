// Bench-only preload for the latency timeline (bench/timeline.mjs), with
// `node --import`: records, in Unix-epoch milliseconds, every GC pause
// (start, duration, kind) and every FileHandle.write, the file backend's
// batch writes (start on the event loop, end when its promise settles, bytes),
// and writes them as JSON to $SCRATCHD_BENCH_TIMELINE at exit. SIGUSR2 forgets
// what was recorded so far (the driver sends it after the warm-up). Not part
// of scratchd.
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { promises as fs, writeFileSync } from 'node:fs';

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

if (out) {
  process.on('SIGUSR2', () => {
    obs.takeRecords();
    gc = [];
    writes = [];
  });
  process.on('exit', () => {
    for (const e of obs.takeRecords()) gc.push([origin + e.startTime, e.duration, kinds[e.detail?.kind] ?? 'other']);
    writeFileSync(out, JSON.stringify({ gc, writes }));
  });
}
