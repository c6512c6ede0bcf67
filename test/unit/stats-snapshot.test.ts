// /stats and /metrics read one snapshot: a scrape reads each backend once,
// and a backend state /metrics names is every state a backend can be in.
import t from 'tap';
import type { Backend, BackendHealth } from '../../src/backend.js';
import type { FileStats } from '../../src/file/stats.js';
import { newRequestCounters } from '../../src/http/counters.js';
import { createMetrics } from '../../src/stats/metrics.js';

function fakeBackend(name: string, health: () => BackendHealth): Backend {
  return {
    name, counters: { persisted: 1, failed: 0, dropped: 0, retried: 0 }, onLoss: () => {},
    queued: () => 0, health, start: async () => {}, send: () => true, reopen: () => {}, close: async () => {},
  };
}

const fileStats: FileStats = {
  sealed_days: 1, compressed_days: 0, pruned_days: 0, late_lines: 0, torn_lines: 0,
  flavors: { gr: { queued: 0, dropped: 2, late: 1, failing: 0 } }, unsealed_past_days: {},
};

t.test('scratchd_backend_state names every state, spooling included', async (t) => {
  const kafka = fakeBackend('kafka', () => ({ state: 'spooling', reason: 'all brokers down; 3 Lines safe in the spool' }));
  const metrics = createMetrics(newRequestCounters(), [kafka], { defaultMetrics: false });
  t.teardown(() => metrics.close());
  const text = await metrics.registry.metrics();
  t.match(text, /^# HELP scratchd_backend_state Backend health: 1 for the state the backend is in \(ok, degraded, spooling, down\), 0 for the others\.$/m);
  t.match(text, /^scratchd_backend_state\{backend="kafka",state="spooling"\} 1$/m);
  t.match(text, /^scratchd_backend_state\{backend="kafka",state="ok"\} 0$/m);
  t.equal(metrics.statsSnapshot().backends.kafka?.up, 0.5, '/stats: spooling is up 0.5, like degraded');
});

t.test('one scrape of /metrics reads each backend once', async (t) => {
  let health = 0;
  let stats = 0;
  const file = Object.assign(fakeBackend('file', () => { health++; return { state: 'ok' }; }),
    { fileStats: () => { stats++; return fileStats; } });
  const metrics = createMetrics(newRequestCounters(), [file], { defaultMetrics: false });
  t.teardown(() => metrics.close());
  const text = await metrics.registry.metrics();
  t.match(text, /^scratchd_file_late_lines_total\{flavor="gr"\} 1$/m);
  t.match(text, /^scratchd_backend_dropped_total\{backend="file",flavor="gr"\} 2$/m);
  t.equal(health, 1, 'health() once');
  t.equal(stats, 1, 'fileStats() once');
  await metrics.registry.metrics();
  t.equal(stats, 2, 'the next scrape reads anew');
});
