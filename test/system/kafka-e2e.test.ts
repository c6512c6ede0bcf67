/**
 * The built daemon (dist/main.js) with the Kafka backend, real HTTP requests
 * in, a real consumer reading the topics back. The broker is KAFKA_BOOTSTRAP
 * or one started here; nothing here breaks the broker (see
 * kafka-e2e-outage.test.ts for that).
 */
import http from 'node:http';
import t from 'tap';
import { consume } from '../helpers/consume.js';
import { drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { health, idCounts, startKafkaDaemon, topicNow } from '../helpers/kafka-daemon.js';
import { until } from '../helpers/wait.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

t.test('three flavors: exact values, timestamps and topics; the same bytes as the files', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, { enrich: { time: 'at' } });
  t.teardown(() => d.stop());
  const began = Date.now();
  const requests = [
    { host: 'gr.test', query: 'foo=bar&a[b]=1&c[]=x&c[]=y&e', expect: { foo: 'bar', a: { b: '1' }, c: ['x', 'y'], e: null } },
    { host: 'TR.test:8080', query: 'q=%CE%B1%CE%B2+%CE%B3;n=2&n=3', expect: { q: 'αβ γ', n: '3' } },
    { host: 'uk.test', query: '', expect: {} },
  ];
  for (const r of requests) {
    t.equal((await request(d.port, `/track?${r.query}`, { host: r.host })).status, 200);
  }
  const beacon = await request(d.port, '/track', {
    host: 'www.gr.test', method: 'POST', body: 'beacon=1&x[y][z]=2', headers: { 'content-type': 'text/plain;charset=UTF-8' },
  });
  t.equal(beacon.status, 204);
  const ended = Date.now();

  const expected: Record<string, object[]> = {
    gr: [requests[0].expect, { beacon: '1', x: { y: { z: '2' } } }],
    tr: [requests[1].expect],
    uk: [requests[2].expect],
  };
  for (const [flavor, values] of Object.entries(expected)) {
    const got = await consume(kafka.bootstrap, d.topics[flavor], { count: values.length, settleMs: 1000 });
    t.equal(got.length, values.length, `${flavor}: ${values.length} messages in ${d.topics[flavor]}`);
    for (const [i, m] of got.entries()) {
      const v = JSON.parse(m.value.toString('utf8')) as Record<string, unknown>;
      const { at, ...rest } = v;
      t.same(rest, values[i], `${flavor}[${i}]: Values`);
      t.equal(m.timestamp, Date.parse(at as string), `${flavor}[${i}]: timestamp = arrival time (${at})`);
      t.ok(m.timestamp >= began && m.timestamp <= ended, `${flavor}[${i}]: timestamp within the request`);
      t.equal(m.key, null, 'no key by default');
      t.equal(m.topic, d.topics[flavor]);
    }
    // Value = the file's line, byte for byte, without the newline.
    await until(`${flavor}: the file has them too`, () => d.fileLines(flavor).length >= values.length);
    t.same(got.map((m) => m.value.toString('utf8')), d.fileLines(flavor), `${flavor}: same bytes as the file`);
  }
  const h = await health(d);
  t.same(h.body.backends.kafka, { state: 'ok' }, 'health: kafka ok');
  // Each delivery report is timed from its Line's arrival (the message timestamp).
  const stats = JSON.parse((await request(d.statsPort, '/stats')).body.toString()) as
    { kafka_delivery_latency_seconds: { count: number; sum: number } };
  const latency = stats.kafka_delivery_latency_seconds;
  t.equal(latency.count, 4, 'delivery latency: one observation per delivered message');
  t.ok(latency.sum > 0 && latency.sum <= (4 * (Date.now() - began)) / 1000,
    `delivery latency: within arrival → now (sum ${latency.sum} s)`);
  t.equal(await d.stop(), 0);
  t.match(drainedCounters(d.logs, 'kafka'), { persisted: 4, failed: 0, dropped: 0 });
});

t.test('a configured key comes from the Values', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, { kafka: { key: 'uid' } });
  t.teardown(() => d.stop());
  await request(d.port, '/track?uid=abc&x=1', { host: 'gr.test' });
  await request(d.port, '/track?x=2', { host: 'gr.test' });
  const got = await consume(kafka.bootstrap, d.topics.gr, { count: 2 });
  t.same(got.map((m) => m.key?.toString() ?? null), ['abc', null]);
});

t.test('10 000 requests: every Line in Kafka exactly once, and in the file', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap);
  t.teardown(() => d.stop());
  const n = 10_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  let next = 0;
  const statuses = new Map<number, number>();
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < n) {
      const id = next++;
      const r = await request(d.port, `/track?id=${id}`, { host: 'gr.test', agent });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  }));
  agent.destroy();
  t.same([...statuses], [[200, n]], 'all 200');
  t.equal(await d.stop(), 0);
  const got = await topicNow(kafka.bootstrap, d.topics.gr!);
  const counts = idCounts(got.map((m) => m.value));
  t.equal(got.length, n, 'exactly n messages');
  t.equal(counts.size, n, 'n distinct Lines');
  t.equal([...counts.values()].filter((c) => c > 1).length, 0, 'no duplicates');
  t.equal(d.fileLines('gr').length, n, 'and n in the file');
  t.match(drainedCounters(d.logs, 'kafka'), { persisted: n, failed: 0, dropped: 0 });
});

t.test('SIGTERM with Lines in flight: delivered before exit', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, {
    // linger.ms long enough that Lines are certainly still in librdkafka when SIGTERM comes
    kafka: { rdkafka: { 'linger.ms': 2000 } },
    config: { shutdown: { graceMs: 100, drainTimeoutMs: 20_000 } },
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  let next = 0;
  const n = 3000;
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next < n) await request(d.port, `/track?id=${next++}`, { host: 'uk.test', agent });
  }));
  agent.destroy();
  const h = await health(d);
  t.ok(h.body.backends.kafka !== undefined, `health before SIGTERM: ${JSON.stringify(h.body.backends.kafka)}`);
  t.equal(await d.stop('SIGTERM'), 0, 'exit 0');
  const c = drainedCounters(d.logs, 'kafka');
  t.match(c, { persisted: n, failed: 0, dropped: 0 }, 'all delivered during the drain');
  const got = await consume(kafka.bootstrap, d.topics.uk, { count: n, settleMs: 1000 });
  t.equal(idCounts(got.map((m) => m.value)).size, n);
  t.equal(got.length, n);
});
