// The stats listener: /metrics (parsed as Prometheus text), /stats and
// /health over counters and backends the test controls, values exact.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { pino } from 'pino';
import { getMetricsFromIterator, type PromData, type PromHistogramData, type PromMetrics } from 'prom2javascript';
import t, { type Test } from 'tap';
import type { Backend, BackendCounters, BackendHealth } from '../../src/backend.js';
import { countResponse, newRequestCounters } from '../../src/http/counters.js';
import { rejectReasons } from '../../src/http/reject.js';
import { createMetrics } from '../../src/stats/metrics.js';
import { DeliveryLatency } from '../../src/kafka/latency.js';
import { healthReport, startStatsServer } from '../../src/stats/server.js';
import { loadUws } from '../../src/http/uws.js';
import { mainJs, startDaemon, tempDir } from '../helpers/daemon.js';
import { raw, request } from '../helpers/http.js';
import { freePort, holdPort, poll, sleep, until } from '../helpers/wait.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const log = pino({ level: 'silent' });
// The stats listeners below run in this process; main loads uWS the same way.
loadUws(16 * 1024);

/**
 * Parse Prometheus text exposition; throws on a malformed line or histogram.
 * prom2javascript knows no NaN, which Prometheus accepts and prom-client
 * writes (as "Nan") for its nodejs_eventloop_lag_{min,mean,...} gauges when
 * two scrapes come closer than the sampler's 10 ms: those lines, and only
 * those, are read as 0.
 */
export function parseMetrics(text: string): Promise<PromMetrics> {
  const lines = text.split('\n').map((l) => {
    if (!/ (NaN|Nan)$/.test(l)) return l;
    if (!l.startsWith('nodejs_eventloop_lag_')) throw new Error(`NaN sample: ${l}`);
    return l.replace(/ (NaN|Nan)$/, ' 0');
  });
  return getMetricsFromIterator(lines[Symbol.iterator]());
}

export function samples(m: PromMetrics, name: string): PromData[] {
  return (m[name]?.data ?? []) as PromData[];
}

export function histograms(m: PromMetrics, name: string): PromHistogramData[] {
  return (m[name]?.data ?? []) as PromHistogramData[];
}

/** Value of the sample of `name` whose labels equal `labels`; undefined if none. */
export function sampleValue(m: PromMetrics, name: string, labels: Record<string, string> = {}): number | undefined {
  const key = JSON.stringify(sorted(labels));
  return samples(m, name).find((s) => JSON.stringify(sorted(s.labels)) === key)?.value;
}

function sorted(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

/** Every reason at 0, then `set`. */
export function reasons(set: Record<string, number>): Record<string, number> {
  const o: Record<string, number> = {};
  for (const r of rejectReasons) o[r] = 0;
  return Object.assign(o, set);
}

class FakeBackend implements Backend {
  readonly counters: BackendCounters = { persisted: 0, failed: 0, dropped: 0, retried: 0 };
  onLoss = (): void => {};
  q = 0;
  h: BackendHealth = { state: 'ok' };
  constructor(readonly name: string) {}
  queued(): number { return this.q; }
  health(): BackendHealth { return this.h; }
  async start(): Promise<void> {}
  send(): boolean { return true; }
  reopen(): void {}
  async close(): Promise<void> {}
}

t.test('stats listener over fake counters and backends', async (t) => {
  const counters = newRequestCounters();
  for (let i = 0; i < 3; i++) countResponse(counters, 'GET', 200);
  countResponse(counters, 'HEAD', 200);
  countResponse(counters, 'POST', 204);
  countResponse(counters, 'POST', 204);
  countResponse(counters, 'GET', 400);
  countResponse(counters, 'GET', 400);
  countResponse(counters, 'OTHER', 404);
  counters.rejected.unknown_flavor = 1;
  counters.rejected.bad_encoding = 1;
  counters.rejected.too_long = 4;

  const file = new FakeBackend('file');
  Object.assign(file.counters, { persisted: 5, failed: 2, dropped: 1, retried: 2 });
  file.q = 3;
  file.h = { state: 'degraded', reason: 'EACCES /x' };
  // The Kafka backend owns its delivery-latency histogram as plain numbers; metrics reads them at scrape time.
  const kafka = Object.assign(new FakeBackend('kafka'), { deliveryLatency: new DeliveryLatency(), spoolSnapshot: () => null });
  Object.assign(kafka.counters, { persisted: 7, failed: 0, dropped: 0, retried: 0 });
  const backends = [file, kafka];

  kafka.deliveryLatency.observe(0.004);
  kafka.deliveryLatency.observe(0.2);
  kafka.deliveryLatency.observe(-1); // ignored: a clock step must not poison the sum
  kafka.deliveryLatency.observe(NaN);
  const kafkaSum = 0.004 + 0.2;

  const metrics = createMetrics(counters, backends);
  t.teardown(() => metrics.close());
  let draining = false;
  const server = await startStatsServer('127.0.0.1:0', metrics, () => healthReport(draining, backends), log);
  t.teardown(() => server.close());
  t.ok(server.port > 0, 'bound a port');

  // Make some garbage so there are GC pauses to see.
  let keep: unknown[] = [];
  for (let i = 0; i < 200_000; i++) keep.push({ i, s: String(i) });
  keep = [];
  // The GC observer reports in batches, the lag histogram once a second: wait for both.
  await poll('a minor GC pause and one event-loop lag window in /metrics',
    async () => parseMetrics((await request(server.port, '/metrics')).body.toString()),
    (m) => (histograms(m, 'scratchd_event_loop_lag_seconds')[0]?.count ?? 0) >= 1
      && (histograms(m, 'scratchd_gc_pause_seconds').find((h) => h.labels.kind === 'minor')?.count ?? 0) > 0);

  await t.test('/metrics is Prometheus text with exact values', async (t) => {
    const r = await request(server.port, '/metrics');
    t.equal(r.status, 200);
    t.equal(r.headers['content-type'], metrics.registry.contentType);
    t.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const m = await parseMetrics(r.body.toString());

    t.equal(m.scratchd_requests_total?.type, 'counter');
    t.same(
      Object.fromEntries(samples(m, 'scratchd_requests_total').map((s) => [`${s.labels.method} ${s.labels.status}`, s.value])),
      { 'GET 200': 3, 'GET 400': 2, 'HEAD 200': 1, 'POST 204': 2, 'OTHER 404': 1 },
    );

    t.equal(m.scratchd_rejected_total?.type, 'counter');
    t.same(
      Object.fromEntries(samples(m, 'scratchd_rejected_total').map((s) => [s.labels.reason, s.value])),
      reasons({ unknown_flavor: 1, bad_encoding: 1, too_long: 4 }),
      'every reason present, zeros included',
    );

    const per = (name: string, backend: string) => sampleValue(m, name, { backend });
    t.equal(m.scratchd_backend_queued_lines?.type, 'gauge');
    t.equal(per('scratchd_backend_queued_lines', 'file'), 3);
    t.equal(per('scratchd_backend_queued_lines', 'kafka'), 0);
    t.equal(per('scratchd_backend_persisted_lines_total', 'file'), 5);
    t.equal(per('scratchd_backend_persisted_lines_total', 'kafka'), 7);
    t.equal(per('scratchd_backend_failures_total', 'file'), 2);
    t.equal(per('scratchd_backend_failures_total', 'kafka'), 0);
    t.equal(per('scratchd_backend_dropped_lines_total', 'file'), 1);
    t.equal(per('scratchd_backend_dropped_lines_total', 'kafka'), 0);
    t.equal(per('scratchd_backend_retries_total', 'file'), 2);
    t.equal(per('scratchd_backend_retries_total', 'kafka'), 0);
    for (const n of ['persisted_lines', 'failures', 'dropped_lines', 'retries']) {
      t.equal(m[`scratchd_backend_${n}_total`]?.type, 'counter', n);
    }
    t.equal(sampleValue(m, 'scratchd_backend_state', { backend: 'file', state: 'degraded' }), 1);
    t.equal(sampleValue(m, 'scratchd_backend_state', { backend: 'file', state: 'ok' }), 0);
    t.equal(sampleValue(m, 'scratchd_backend_state', { backend: 'file', state: 'down' }), 0);
    t.equal(sampleValue(m, 'scratchd_backend_state', { backend: 'kafka', state: 'ok' }), 1);

    t.equal(m.scratchd_kafka_delivery_latency_seconds?.type, 'histogram');
    const [k] = histograms(m, 'scratchd_kafka_delivery_latency_seconds');
    t.equal(k!.count, 2);
    t.equal(k!.sum, kafkaSum);
    t.equal(k!.buckets['0.0025'], 0);
    t.equal(k!.buckets['0.005'], 1);
    t.equal(k!.buckets['0.1'], 1);
    t.equal(k!.buckets['0.25'], 2);
    t.equal(k!.buckets['+Inf'], 2);

    t.equal(m.scratchd_gc_pause_seconds?.type, 'histogram');
    const gc = histograms(m, 'scratchd_gc_pause_seconds');
    t.same(gc.map((h) => h.labels.kind).sort(), ['incremental', 'major', 'minor', 'weakcb'], 'every kind present from the start');
    const minor = gc.find((h) => h.labels.kind === 'minor')!;
    t.ok(minor.count > 0, 'minor GC pauses observed');
    t.ok(minor.sum! > 0);

    t.equal(m.scratchd_event_loop_lag_seconds?.type, 'histogram');
    t.ok(histograms(m, 'scratchd_event_loop_lag_seconds')[0]!.count >= 1, 'at least one one-second window');

    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_open_fds',
      'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_gc_duration_seconds', 'nodejs_version_info']) {
      t.ok(m[name] !== undefined, `default metric ${name}`);
    }
    for (const name of Object.keys(m).filter((n) => n.startsWith('scratchd_'))) {
      t.ok(m[name]!.help.length > 0, `${name} has HELP`);
      if (m[name]!.type === 'counter') t.match(name, /_total$/, `${name}: counters end in _total`);
    }
  });

  await t.test('values are read at scrape time', async (t) => {
    countResponse(counters, 'GET', 200);
    counters.rejected.schema++;
    file.counters.persisted += 10;
    file.q = 0;
    const m = await parseMetrics((await request(server.port, '/metrics')).body.toString());
    t.equal(sampleValue(m, 'scratchd_requests_total', { method: 'GET', status: '200' }), 4);
    t.equal(sampleValue(m, 'scratchd_rejected_total', { reason: 'schema' }), 1);
    t.equal(sampleValue(m, 'scratchd_backend_persisted_lines_total', { backend: 'file' }), 15);
    t.equal(sampleValue(m, 'scratchd_backend_queued_lines', { backend: 'file' }), 0);
  });

  await t.test('/stats is the same facts as JSON', async (t) => {
    const r = await request(server.port, '/stats');
    t.equal(r.status, 200);
    t.equal(r.headers['content-type'], 'application/json');
    const s = JSON.parse(r.body.toString());
    t.same(s.requests, { GET: { 200: 4, 400: 2 }, HEAD: { 200: 1 }, POST: { 204: 2 }, OTHER: { 404: 1 } });
    t.same(s.rejected, reasons({ unknown_flavor: 1, bad_encoding: 1, too_long: 4, schema: 1 }));
    t.same(s.backends, {
      file: { queued: 0, persisted: 15, failed: 2, dropped: 1, retried: 2, up: 0.5 },
      kafka: { queued: 0, persisted: 7, failed: 0, dropped: 0, retried: 0, up: 1 },
    });
    t.same(s.kafka_delivery_latency_seconds, { count: 2, sum: kafkaSum });
    for (const k of ['uptime_seconds', 'rss_bytes', 'heap_used_bytes', 'heap_total_bytes', 'cpu_user_seconds_total']) {
      t.ok(typeof s.process[k] === 'number' && s.process[k] > 0, `process.${k}`);
    }
    t.ok(s.gc.minor.count > 0 && s.gc.minor.seconds_total > 0, 'gc.minor');
    t.same(Object.keys(s.gc).sort(), ['incremental', 'major', 'minor', 'weakcb']);
    t.ok(typeof s.event_loop_lag_seconds === 'number' && s.event_loop_lag_seconds >= 0);
    // Every leaf is a number: the cron can ship it to Graphite as it is.
    const leaves = (o: unknown, p: string[] = []): [string, unknown][] =>
      typeof o === 'object' && o !== null ? Object.entries(o).flatMap(([k, v]) => leaves(v, [...p, k])) : [[p.join('.'), o]];
    for (const [path, v] of leaves(s)) t.equal(typeof v, 'number', path);
  });

  await t.test('/health: per-backend state; 503 when one is down or draining', async (t) => {
    let r = await request(server.port, '/health');
    t.equal(r.status, 200, 'degraded is still 200');
    t.equal(r.headers['content-type'], 'application/json');
    t.same(JSON.parse(r.body.toString()), {
      status: 'ok', backends: { file: { state: 'degraded', reason: 'EACCES /x' }, kafka: { state: 'ok' } },
    });
    kafka.h = { state: 'down', reason: 'all brokers down' };
    r = await request(server.port, '/health');
    t.equal(r.status, 503);
    t.same(JSON.parse(r.body.toString()).backends.kafka, { state: 'down', reason: 'all brokers down' });
    kafka.h = { state: 'ok' };
    draining = true;
    r = await request(server.port, '/health');
    t.equal(r.status, 503);
    t.equal(JSON.parse(r.body.toString()).status, 'draining');
    draining = false;
    t.equal((await request(server.port, '/health')).status, 200);
  });

  await t.test('HEAD, other methods, other paths', async (t) => {
    const get = await request(server.port, '/metrics');
    const head = await request(server.port, '/metrics', { method: 'HEAD' });
    t.equal(head.status, 200);
    t.equal(head.body.length, 0);
    t.equal(head.headers['content-type'], metrics.registry.contentType);
    // The text changes a little between scrapes (CPU time, memory).
    t.ok(Math.abs(Number(head.headers['content-length']) - get.body.length) < 200, 'Content-Length about the GET length');
    t.equal((await request(server.port, '/stats', { method: 'HEAD' })).status, 200);
    const post = await request(server.port, '/metrics', { method: 'POST', body: 'x' });
    t.equal(post.status, 405);
    t.equal(post.headers.allow, 'GET, HEAD');
    for (const p of ['/', '/track?a=1', '/metrics/', '/metricsx', '/stats.json']) {
      t.equal((await request(server.port, p)).status, 404, p);
    }
    // Routing is on the path; a query string on a known path is that path.
    t.equal((await request(server.port, '/health?verbose=1')).status, 200);
  });

  await t.test('a client that goes away mid-scrape does not hurt the listener', async (t) => {
    for (let i = 0; i < 20; i++) {
      const s = net.connect(server.port, '127.0.0.1');
      await new Promise<void>((r) => s.on('connect', () => {
        s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
        s.destroy();
        r();
      }));
    }
    await sleep(100);
    t.equal((await request(server.port, '/metrics')).status, 200);
    const pipelined = await raw(server.port, 'GET /stats HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', 500);
    t.equal(pipelined.match(/HTTP\/1\.1 200 OK/g)?.length, 2, 'pipelined sync and async answers');
  });

  await t.test('cannot bind: clear rejection', async (t) => {
    const health = () => healthReport(false, backends);
    await t.rejects(startStatsServer(`127.0.0.1:${server.port}`, metrics, health, log),
      { message: `stats listener: cannot listen on 127.0.0.1:${server.port} (address in use, not local, or not permitted)` },
      'the port our own listener holds (uWS would share it without exclusive-port)');
    const other = await holdPort();
    await t.rejects(startStatsServer(`127.0.0.1:${other.port}`, metrics, health, log), /cannot listen on 127\.0\.0\.1:\d+/,
      'a port another socket holds');
    await other.close();
    await t.rejects(startStatsServer('192.0.2.1:9100', metrics, health, log), /cannot listen on 192\.0\.2\.1:9100/,
      'not a local address');
  });

  await t.test('close() stops listening', async (t) => {
    const s = await startStatsServer('127.0.0.1:0', metrics, () => healthReport(false, backends), log);
    t.equal((await request(s.port, '/stats')).status, 200);
    s.close();
    s.close();
    await t.rejects(request(s.port, '/stats'), { code: 'ECONNREFUSED' });
  });
});

// ---------------------------------------------------------------------------
// Against the built daemon: a scripted sequence of requests, then every
// counter, exactly, in both /metrics and /stats.

const limits = { maxQueryBytes: 1024, maxBodyBytes: 256, maxParams: 5, maxDepth: 2 };

/**
 * What the daemon's query converter (dist/query/index.js) makes of `query`: the
 * reason it refuses it, or null when it accepts it. The counters are what
 * is under test here, not the converter (test/query*.test.ts test that),
 * so expected counts follow whatever converter is built; `spec` says what
 * SPEC.md wants, and the converter must agree.
 */
async function converterVerdict(t: Test, query: string, spec: string): Promise<string | null> {
  const { parseValues } = await import('../../src/query/index.js');
  const v = parseValues(query, limits);
  const reason = 'reason' in v ? v.reason : null;
  t.equal(reason, spec, `converter refuses ${query} as ${spec}`);
  return reason;
}

async function statsOf(port: number): Promise<{ m: PromMetrics; s: any }> {
  const [m, s] = await Promise.all([request(port, '/metrics'), request(port, '/stats')]);
  return { m: await parseMetrics(m.body.toString()), s: JSON.parse(s.body.toString()) };
}

/** Assert requests, rejections and one backend's counters in both views. */
function assertAll(
  t: Test, m: PromMetrics, s: any,
  want: { requests: Record<string, Record<string, number>>; rejected: Record<string, number>;
    file: { queued: number; persisted: number; failed: number; dropped: number; retried: number; state: string } },
): void {
  const fromMetrics: Record<string, Record<string, number>> = {};
  for (const x of samples(m, 'scratchd_requests_total')) (fromMetrics[x.labels.method!] ??= {})[x.labels.status!] = x.value;
  const nonEmpty = Object.fromEntries(Object.entries(want.requests).filter(([, v]) => Object.keys(v).length > 0));
  t.same(fromMetrics, nonEmpty, '/metrics scratchd_requests_total');
  t.same(s.requests, { GET: {}, HEAD: {}, POST: {}, OTHER: {}, ...want.requests }, '/stats requests');
  t.same(Object.fromEntries(samples(m, 'scratchd_rejected_total').map((x) => [x.labels.reason, x.value])), want.rejected,
    '/metrics scratchd_rejected_total');
  t.same(s.rejected, want.rejected, '/stats rejected');
  const f = want.file;
  const b = { backend: 'file' };
  t.same({
    queued: sampleValue(m, 'scratchd_backend_queued_lines', b),
    persisted: sampleValue(m, 'scratchd_backend_persisted_lines_total', b),
    failed: sampleValue(m, 'scratchd_backend_failures_total', b),
    dropped: sampleValue(m, 'scratchd_backend_dropped_lines_total', b),
    retried: sampleValue(m, 'scratchd_backend_retries_total', b),
    state: samples(m, 'scratchd_backend_state').find((x) => x.labels.backend === 'file' && x.value === 1)?.labels.state,
  }, f, '/metrics file backend');
  const up = f.state === 'ok' ? 1 : f.state === 'degraded' ? 0.5 : 0;
  t.same(s.backends, { file: { queued: f.queued, persisted: f.persisted, failed: f.failed, dropped: f.dropped, retried: f.retried, up } },
    '/stats file backend');
}

t.test('daemon: every counter after a scripted sequence', async (t) => {
  const d = await startDaemon({
    config: {
      limits,
      flavors: [
        { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' },
        { name: 'shop', hosts: ['shop.test'], timeZone: 'Europe/London',
          schema: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]+$' } } } },
      ],
    },
  });
  t.teardown(() => d.stop('SIGKILL'));
  const statsPort = d.statsPort;
  t.not(statsPort, d.port, 'its own listener');

  const requests: Record<string, Record<string, number>> = { GET: {}, HEAD: {}, POST: {} };
  const rejected = reasons({});
  let lines = 0;
  const count = (method: string, status: number) => {
    requests[method]![status] = (requests[method]![status] ?? 0) + 1;
  };
  const send = async (what: string, path: string, status: number, reason: string | null,
    opts: Parameters<typeof request>[2] = {}): Promise<void> => {
    const r = await request(d.port, path, { host: 'gr.test', ...opts });
    t.equal(r.status, status, what);
    if (reason !== null) t.equal(r.body.toString(), `${reason}\n`, `${what}: reason`);
    count(opts.method ?? 'GET', status);
    if (reason !== null) rejected[reason]!++;
    else if (status === 200 || status === 204) lines++;
  };
  const form = { 'content-type': 'application/x-www-form-urlencoded' };

  await send('GET', '/track?a=1', 200, null);
  await send('GET', '/track?b=2&c=x', 200, null);
  await send('HEAD', '/track?c=3', 200, null, { method: 'HEAD' });
  await send('POST form', '/track', 204, null, { method: 'POST', body: 'p=1', headers: form });
  await send('POST text', '/track', 204, null, { method: 'POST', body: 'p=2', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
  await send('schema ok', '/track?id=42', 200, null, { host: 'shop.test' });
  await send('unknown Host', '/track?a=1', 400, 'unknown_flavor', { host: 'evil.test' });
  // What the converter decides: bad %-encoding, invalid UTF-8, a type
  // conflict, too deep, too many parameters.
  for (const [query, spec] of [['a=%zz', 'bad_encoding'], ['a=%FF', 'invalid_utf8'], ['a=1&a[b]=2', 'param_type'],
    ['a[b][c][d]=1', 'depth'], ['a=1&b=2&c=3&d=4&e=5&f=6', 'too_many_params']] as const) {
    const reason = await converterVerdict(t, query, spec);
    await send(query, `/track?${query}`, reason === null ? 200 : 400, reason);
  }
  await send('query over the limit', '/track?a=' + 'x'.repeat(1100), 414, 'too_long');
  await send('body over the limit', '/track', 413, 'body_too_large', { method: 'POST', body: 'a=' + 'x'.repeat(300), headers: form });
  await send('wrong Content-Type', '/track', 415, 'bad_content_type', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
  await send('schema failure', '/track?id=abc', 400, 'schema', { host: 'shop.test' });
  for (const p of ['/metrics', '/stats']) await send(`public ${p}`, p, 404, null);

  const { m, s } = await poll('the file backend to persist every Line', () => statsOf(statsPort),
    (v) => v.s.backends.file.persisted === lines && v.s.backends.file.queued === 0);
  t.ok(lines >= 6);
  assertAll(t, m, s, { requests, rejected, file: { queued: 0, persisted: lines, failed: 0, dropped: 0, retried: 0, state: 'ok' } });
  t.same(JSON.parse((await request(statsPort, '/health')).body.toString()), { status: 'ok', backends: { file: { state: 'ok' } } });
  t.ok(histograms(m, 'scratchd_gc_pause_seconds').length === 4 && m.process_cpu_user_seconds_total !== undefined, 'runtime metrics');

  // Stats requests are not counted as public requests.
  const again = await statsOf(statsPort);
  t.same(again.s.requests, s.requests);

  // Draining: /health answers 503 until the process exits.
  d.proc.kill('SIGTERM');
  const h = await poll('draining', () => request(statsPort, '/health'), (r) => r.status === 503);
  t.equal(JSON.parse(h.body.toString()).status, 'draining');
  t.equal(await d.exited, 0);
});

t.test('daemon: a failing file backend is counted, and recovers', async (t) => {
  const base = tempDir();
  const blocker = `${base}/blocker`;
  writeFileSync(blocker, ''); // the log dir lies under a regular file: ENOTDIR, even for root
  const d = await startDaemon({
    config: {
      shutdown: { drainTimeoutMs: 5000, graceMs: 0 },
      backends: { file: { dir: `${blocker}/log`, retryMs: 3000, queueCapacity: 2 } },
    },
  });
  t.teardown(() => d.stop('SIGKILL'));
  const statsPort = d.statsPort;

  t.equal((await request(d.port, '/track?n=1', { host: 'gr.test' })).status, 200);
  // The first write fails; the backend holds that Line and retries in 3 s.
  await poll('the first failure', () => statsOf(statsPort), (v) => v.s.backends.file.failed === 1);
  // A flavor whose write fails holds at most its share of the queue,
  // max(1, capacity 2 / 3 flavors) = 1 Line: the one being retried; the
  // other four are dropped. The answers stay 200: the request path never
  // waits on a backend.
  for (let n = 2; n <= 5; n++) t.equal((await request(d.port, `/track?n=${n}`, { host: 'gr.test' })).status, 200);
  const during = await statsOf(statsPort);
  const requests = { GET: { 200: 5 } };
  assertAll(t, during.m, during.s, {
    requests, rejected: reasons({}),
    file: { queued: 1, persisted: 0, failed: 1, dropped: 4, retried: 0, state: 'degraded' },
  });
  const h = await request(statsPort, '/health');
  t.equal(h.status, 200, 'degraded is not down');
  t.match(JSON.parse(h.body.toString()), { status: 'ok', backends: { file: { state: 'degraded', reason: /^ENOTDIR / } } });

  unlinkSync(blocker); // the cause is fixed; the retry succeeds
  const after = await poll('recovery', () => statsOf(statsPort), (v) => v.s.backends.file.persisted === 1, 10_000);
  assertAll(t, after.m, after.s, {
    requests, rejected: reasons({}),
    file: { queued: 0, persisted: 1, failed: 1, dropped: 4, retried: 1, state: 'ok' },
  });
  t.equal(await d.stop(), 0);
});

t.test('daemon: a stats port held by another process: beacons served and recorded, the error logged, the bind retried', async (t) => {
  const holder = await holdPort();
  let held = true;
  t.teardown(() => held ? holder.close() : undefined);
  const dir = tempDir();
  const file = `${dir}/config.json`;
  const port = await freePort();
  writeFileSync(file, JSON.stringify({ flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' }],
    listen: `127.0.0.1:${port}`, stats: { listen: `127.0.0.1:${holder.port}` }, backends: { file: { dir: `${dir}/log` } } }));
  const proc = spawn(...withoutTapHooks(process.execPath, [mainJs, '--config', file]), { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  t.teardown(() => { proc.kill('SIGKILL'); });
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) logs.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
  });
  await until('serving', () => logs.some((l) => l.msg === 'serving') || proc.exitCode !== null);
  t.equal(proc.exitCode, null, 'the daemon runs');
  const err = logs.find((l) => l.level === 50 && String(l.msg).includes(`cannot listen on 127.0.0.1:${holder.port}`));
  t.ok(err, 'an error line names the stats address');
  t.match(String(err?.msg), /beacons are served.*retrying/, '… and says beacons are served and the bind is retried');
  for (let i = 0; i < 5; i++) t.equal((await request(port, `/track?n=${i}`, { host: 'gr.test' })).status, 200, `beacon ${i} answered`);
  t.equal((await request(port, '/health')).status, 200, 'the public /health answers');

  await holder.close();
  held = false;
  const ready = await poll('the stats listener to bind once the port is free', () => logs.find((l) => l.msg === 'stats listener ready'),
    (l) => l !== undefined, 10_000);
  t.equal(ready!.port, holder.port, 'bound on the configured port');
  t.equal((await request(holder.port, '/health')).status, 200, 'then /health answers on the stats port');
  const stats = JSON.parse((await request(holder.port, '/stats')).body.toString()) as { requests: Record<string, Record<string, number>> };
  t.ok(stats.requests.GET['200'] >= 5, `/stats counts the beacons answered meanwhile (${JSON.stringify(stats.requests)})`);
  t.ok(logs.some((l) => l.msg === 'stats listener bound at last; /metrics, /stats and /health are served'), 'the recovery is logged');
  proc.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit');
  const lines = readdirSync(`${dir}/log/gr`).filter((f) => f.endsWith('.log')).flatMap((f) => readFileSync(`${dir}/log/gr/${f}`, 'utf8').split('\n').filter(Boolean));
  t.equal(lines.length, 5, 'every beacon recorded in the day file');
});

t.test('daemon: the same port for both listeners: exit 1, one line on stderr', async (t) => {
  const dir = tempDir();
  // The stats socket holds it exclusively, so the public one fails instead
  // of silently sharing it.
  const port = await freePort();
  const file = `${dir}/config.json`;
  writeFileSync(file, JSON.stringify({ flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' }],
    backends: { file: { dir: `${dir}/log` } }, listen: `127.0.0.1:${port}`, stats: { listen: `127.0.0.1:${port}` } }));
  const same = spawnSync(...withoutTapHooks(process.execPath, [mainJs, '--config', file]), { encoding: 'utf8', timeout: 20_000 });
  t.equal(same.status, 1);
  t.match(same.stderr, /^scratchd: cannot listen on 127\.0\.0\.1:\d+\n$/);
});

t.test('a backend whose health() throws costs a 500, not the process', async (t) => {
  const bad = new FakeBackend('bad');
  bad.health = () => { throw new Error('boom'); };
  const metrics = createMetrics(newRequestCounters(), [bad], { defaultMetrics: false });
  t.teardown(() => metrics.close());
  const s = await startStatsServer('127.0.0.1:0', metrics, () => healthReport(false, [bad]), log);
  t.teardown(() => s.close());
  for (const p of ['/health', '/stats', '/metrics']) t.equal((await request(s.port, p)).status, 500, p);
  bad.health = () => ({ state: 'ok' });
  for (const p of ['/health', '/stats', '/metrics']) t.equal((await request(s.port, p)).status, 200, p);
});
