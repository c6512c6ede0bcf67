// Bench-only preload (node --import) for an experiment on Kafka delivery
// reports: with SCRATCHD_BENCH_POLL_MS it replaces the interval scratchd
// gives node-rdkafka's setPollInterval, and it measures the bursts in which
// reports reach the event loop (reports less than 20 µs apart belong to one
// poll). On every SIGUSR2 (bench/variants.mjs sends one after the warm-up and
// one after the maximum-load run) it prints one line "POLLBURSTS {json}" with
// the bursts since the last one, and starts over. Not part of scratchd.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const Kafka = createRequire(`${root}/`)('node-rdkafka');
const pollMs = Number(process.env.SCRATCHD_BENCH_POLL_MS ?? 0);
if (pollMs > 0) {
  const set = Kafka.Producer.prototype.setPollInterval;
  Kafka.Producer.prototype.setPollInterval = function (interval) {
    return set.call(this, interval === 0 ? 0 : pollMs);
  };
}
let bursts = [];
let burst = null;
const emit = Kafka.Producer.prototype.emit;
Kafka.Producer.prototype.emit = function timedEmit(event, ...args) {
  if (event !== 'delivery-report') return emit.call(this, event, ...args);
  const start = performance.now();
  const r = emit.call(this, event, ...args);
  const end = performance.now();
  if (burst !== null && start - burst[1] < 0.02) {
    burst[1] = end;
    burst[2]++;
  } else {
    burst = [start, end, 1];
    bursts.push(burst);
  }
  return r;
};
process.on('SIGUSR2', () => {
  const ms = bursts.map((b) => b[1] - b[0]).sort((a, b) => a - b);
  const n = bursts.map((b) => b[2]).sort((a, b) => a - b);
  const q = (xs, p) => (xs.length === 0 ? 0 : xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]);
  process.stderr.write(`POLLBURSTS ${JSON.stringify({ bursts: bursts.length, reportsMedian: q(n, 0.5), reportsMax: q(n, 1), msMedian: q(ms, 0.5), msP99: q(ms, 0.99), msMax: q(ms, 1) })}\n`);
  bursts = [];
  burst = null;
});
