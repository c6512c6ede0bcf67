/**
 * Kafka faults the outage tests (kafka-e2e-outage.test.ts: one long pause or
 * kill, broker absent at start) do not cover: the broker SIGKILLed again and
 * again under load, a topic that does not exist on a broker that will not
 * create it, and a Line larger than the broker accepts. Each is counted and
 * logged, nothing crashes, HTTP answers 200 at once, and the file backend
 * has every Line. One private broker for all of it, with auto-creation off
 * and a 16 KiB message limit.
 */
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { consume } from '../helpers/consume.js';
import { drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { health, idCounts, spoolHoldsNothing, startKafkaDaemon, topicNow, traffic, type KafkaDaemon } from '../helpers/kafka-daemon.js';
import { spoolDir } from '../helpers/kafka-spool.js';
import { sleep, until } from '../helpers/wait.js';
import { stats } from '../helpers/watch.js';

/** The size limit of the small topics below (topic-level max.message.bytes); the broker's stays at its default. */
const MAX_MESSAGE = 16_384;
const kafka = await startKafka({ props: ['auto.create.topics.enable=false'] });
t.teardown(() => kafka.stop());

/** An answer slower than this would mean the request path waits on Kafka; not tighter, for loaded CI machines. */
const SLOW_MS = 2000;

/** The daemon's flavors' topics, created up front: this broker creates none by itself. */
async function withTopics(d: KafkaDaemon, ...flavors: string[]): Promise<void> {
  for (const f of flavors) await kafka.createTopic(d.topics[f]!);
}

/** The daemon's distinct error log lines (msg: err), for the record. */
function errors(d: KafkaDaemon): string[] {
  return [...new Set(d.logs.filter((l) => Number(l.level) >= 50).map((l) => `${l.msg}: ${l.err ?? ''}${l.code !== undefined ? ` (${l.code})` : ''}`))];
}

/** Lines in the flavor's file so far; a file caught in the middle of a write counts as not there yet. */
function fileCount(d: KafkaDaemon, flavor: string): number {
  try {
    return d.fileLines(flavor).length;
  } catch {
    return -1;
  }
}

async function kafkaCounters(d: KafkaDaemon): Promise<Record<string, number>> {
  return (await stats(d)).backends.kafka!;
}

t.test('broker SIGKILLed twice under steady traffic: HTTP and file unaffected, every Line delivered once', async (t: Test) => {
  const d = await startKafkaDaemon(kafka.bootstrap);
  t.teardown(() => d.stop());
  await withTopics(d, 'gr');
  const tr = traffic(d, 'gr.test');
  for (let i = 0; i < 2; i++) {
    const before = (await kafkaCounters(d)).persisted!;
    await until('Lines delivered since the broker came up', async () => (await kafkaCounters(d)).persisted! >= before + 100, 30_000);
    await kafka.kill();
    await sleep(1500);
    const began = Date.now();
    await kafka.restart();
    t.comment(`kill ${i + 1}: broker back after ${Date.now() - began} ms; ${tr.answered} answered so far`);
  }
  await sleep(1000);
  const { ok, bad, slowestMs } = await tr.stop();
  t.same(bad, [], 'every request answered 200');
  t.ok(slowestMs < SLOW_MS, `slowest answer ${slowestMs.toFixed(1)} ms`);
  t.ok(ok.length > 300, `${ok.length} requests across the kills`);
  t.equal(await d.stop(), 0);
  const got = await topicNow(kafka.bootstrap, d.topics.gr!);
  const counts = idCounts(got.map((m) => m.value));
  const missing = ok.filter((id) => !counts.has(id));
  t.same(missing.slice(0, 20), [], `all ${ok.length} answered Lines reached Kafka (${missing.length} missing, ${got.length} consumed)`);
  t.same([...counts].filter(([, n]) => n > 1).map(([id]) => id).slice(0, 20), [], 'none twice (idempotent producer)');
  t.comment(`errors logged: ${JSON.stringify(errors(d))}`);
  t.match(drainedCounters(d.logs, 'kafka'), { persisted: ok.length, dropped: 0 });
  t.match(drainedCounters(d.logs, 'file'), { persisted: ok.length, dropped: 0, failed: 0 });
});

t.test('topic missing, auto-creation off: counted and logged, other topics and the file unaffected', async (t: Test) => {
  const d = await startKafkaDaemon(kafka.bootstrap, { config: { shutdown: { graceMs: 0, drainTimeoutMs: 5000 } }, kafka: { flushTimeoutMs: 2000 } });
  t.teardown(() => d.stop());
  await withTopics(d, 'gr'); // uk's topic never exists
  for (let i = 0; i < 20; i++) {
    for (const host of ['gr.test', 'uk.test']) {
      const started = performance.now();
      const r = await request(d.port, `/track?id=${i}`, { host });
      t.equal(r.status, 200, `${host} ${i}`, { diagnostic: r.status !== 200 });
      t.ok(performance.now() - started < SLOW_MS, `${host} ${i} answered at once`, { diagnostic: false });
    }
  }
  const got = await consume(kafka.bootstrap, d.topics.gr!, { count: 20, settleMs: 500, timeoutMs: 30_000 });
  t.equal(got.length, 20, 'the existing topic gets its Lines');
  t.equal(d.fileLines('uk').length, 20, 'the file has the missing topic\'s Lines');
  const h = await health(d);
  t.comment(`kafka health with a missing topic: ${JSON.stringify(h.body.backends.kafka)}`);
  t.equal(h.body.backends.file?.state, 'ok');
  // librdkafka keeps the Lines for an unknown topic until it gives up on it
  // (topic.metadata.propagation.max.ms) or until the flush timeout at exit:
  // either way they end up counted, never silently gone.
  t.equal(await d.stop(), 0);
  const c = drainedCounters(d.logs, 'kafka');
  t.comment(`errors logged: ${JSON.stringify(errors(d))}`);
  t.equal(c.persisted, 20, 'the 20 Lines of the existing topic');
  t.equal(c.dropped, 20, 'the 20 Lines of the missing topic, dropped and counted');
  const logged = d.logs.filter((l) => l.level === 50 && /kafka/.test(String(l.msg)));
  t.ok(logged.length >= 1, `logged: ${JSON.stringify(logged.map((l) => [l.msg, l.err]))}`);
  t.ok(logged.length <= 5, 'rate-limited');
});

t.test('topic missing, while running: librdkafka fails its Lines after topic.metadata.propagation.max.ms, counted and logged at once', async (t: Test) => {
  // Default 30 s; shortened here. Until then the Lines wait in librdkafka's queue and health says ok.
  const d = await startKafkaDaemon(kafka.bootstrap, { kafka: { rdkafka: { 'topic.metadata.propagation.max.ms': 2000 } } });
  t.teardown(() => d.stop());
  for (let i = 0; i < 10; i++) t.equal((await request(d.port, `/track?id=${i}`, { host: 'uk.test' })).status, 200);
  const failed = await d.waitLog((l) => l.msg === 'kafka delivery failed, Line dropped');
  t.equal(failed.err, 'unknown topic or partition');
  t.equal((await health(d)).body.backends.kafka?.state, 'degraded', 'health shows the recent delivery errors');
  t.equal(await d.stop(), 0);
  t.match(drainedCounters(d.logs, 'kafka'), { persisted: 0, failed: 10, dropped: 10 });
  t.match(drainedCounters(d.logs, 'file'), { persisted: 10 });
});

/**
 * A daemon with the spool whose uk topic never exists (gr's does), after 10
 * uk Lines and librdkafka's first "unknown topic" verdict on them.
 */
async function ukUnknown(t: Test, opts: { clock?: number } = {}): Promise<KafkaDaemon> {
  const d = await startKafkaDaemon(kafka.bootstrap, {
    ...opts,
    kafka: { flushTimeoutMs: 2000, spool: { dir: spoolDir(), fsyncMs: 50 }, rdkafka: { 'topic.metadata.propagation.max.ms': 1000 } },
  });
  t.teardown(() => d.stop());
  await withTopics(d, 'gr');
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  for (let i = 0; i < 10; i++) t.equal((await request(d.port, `/track?id=${i}`, { host: 'uk.test' })).status, 200);
  await d.waitLog((l) => /^kafka delivery failed/.test(String(l.msg)) && l.code === 'ERR_UNKNOWN_TOPIC_OR_PART');
  return d;
}

t.test('topic missing, with the spool: its Lines dropped and counted once brokers kept calling it unknown; the other topic\'s Lines, spooled behind them, delivered', async (t: Test) => {
  // librdkafka's verdict on uk is retried: the Lines go to the spool, and gr's after them.
  const d = await ukUnknown(t);
  const gr = Array.from({ length: 10 }, (_, i) => `gr${i}`);
  for (const id of gr) t.equal((await request(d.port, `/track?id=${id}`, { host: 'gr.test' })).status, 200);
  await until('the spool empty', () => spoolHoldsNothing(d), 30_000);
  t.match(await kafkaCounters(d), { persisted: 10, dropped: 10 }, 'uk\'s 10 Lines dropped, gr\'s 10 delivered');
  t.equal(await d.stop(), 0);
  const got = idCounts((await topicNow(kafka.bootstrap, d.topics.gr!)).map((m) => m.value));
  t.same(gr.filter((id) => !got.has(id)), [], 'gr\'s Lines in its topic');
});

t.test('topic missing, with the spool, the wall clock stepped back meanwhile (an NTP step): still given up on after the window, the other topic\'s Lines delivered', async (t: Test) => {
  const d = await ukUnknown(t, { clock: Date.now() });
  // The window started; the wall clock goes back ten minutes. The window
  // (at least 5 s here) is elapsed time, not ten minutes and more.
  await d.setClock(Date.now() - 10 * 60_000);
  const gr = Array.from({ length: 10 }, (_, i) => `gr${i}`);
  for (const id of gr) t.equal((await request(d.port, `/track?id=${id}`, { host: 'gr.test' })).status, 200);
  await until('the spool empty', () => spoolHoldsNothing(d), 30_000).catch(() => {});
  t.match(await kafkaCounters(d), { persisted: 10, dropped: 10 }, 'uk\'s 10 Lines dropped, gr\'s 10 delivered, within the window');
  t.equal(await d.stop(), 0);
  const got = idCounts((await topicNow(kafka.bootstrap, d.topics.gr!)).map((m) => m.value));
  t.same(gr.filter((id) => !got.has(id)), [], 'gr\'s Lines in its topic');
});

t.test('topic missing, with the spool, the broker paused right after its first verdict for longer than the window, then the topic created: none of its Lines dropped', async (t: Test) => {
  // A broker that says nothing does not keep calling the topic unknown: its
  // silence is an outage, and the window starts again once it answers.
  const d = await startKafkaDaemon(kafka.bootstrap, {
    kafka: { flushTimeoutMs: 2000, spool: { dir: spoolDir(), fsyncMs: 50 }, rdkafka: { 'topic.metadata.propagation.max.ms': 1000 } },
  });
  t.teardown(async () => {
    await kafka.resume();
    await d.stop();
  });
  await withTopics(d, 'gr');
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const gr = traffic(d, 'gr.test', 1, 20); // the other topic's Lines go on, spooled behind uk's
  const uk = Array.from({ length: 10 }, (_, i) => `uk${i}`);
  for (const id of uk) t.equal((await request(d.port, `/track?id=${id}`, { host: 'uk.test' })).status, 200);
  await d.waitLog((l) => /^kafka delivery failed/.test(String(l.msg)) && l.code === 'ERR_UNKNOWN_TOPIC_OR_PART', 30_000);
  await kafka.pause();
  await sleep(7000); // longer than the window (the least, 5 s, here)
  await kafka.resume();
  await kafka.createTopic(d.topics.uk!);
  const g = await gr.stop();
  await until('every Line delivered or dropped', async () => {
    const k = await kafkaCounters(d);
    return k.persisted! + k.dropped! === uk.length + g.ok.length;
  }, 60_000).catch(() => {});
  t.match(await kafkaCounters(d), { dropped: 0, persisted: uk.length + g.ok.length }, 'nothing dropped');
  t.equal(await d.stop(), 0);
  const got = idCounts((await topicNow(kafka.bootstrap, d.topics.uk!)).map((m) => m.value));
  t.same(uk.filter((id) => !got.has(id)), [], 'uk\'s Lines in its topic');
  const grGot = idCounts((await topicNow(kafka.bootstrap, d.topics.gr!)).map((m) => m.value));
  t.same(g.ok.filter((id) => !grGot.has(id)).slice(0, 10), [], 'gr\'s Lines in its topic');
});

t.test('topic missing, with the spool, SIGTERM while its Lines are retried: the drain timeout holds; at the next start they are dropped and counted, the other topic\'s delivered', async (t: Test) => {
  const dir = spoolDir();
  const kafkaOpts = { flushTimeoutMs: 2000, spool: { dir, fsyncMs: 50 }, rdkafka: { 'topic.metadata.propagation.max.ms': 1000 } };
  const d = await startKafkaDaemon(kafka.bootstrap, { config: { shutdown: { graceMs: 0, drainTimeoutMs: 5000 } }, kafka: kafkaOpts });
  t.teardown(() => d.stop());
  await withTopics(d, 'gr'); // uk's topic never exists
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const uk = Array.from({ length: 20 }, (_, i) => `uk${i}`);
  const gr = Array.from({ length: 10 }, (_, i) => `gr${i}`);
  for (const id of uk.slice(0, 10)) t.equal((await request(d.port, `/track?id=${id}`, { host: 'uk.test' })).status, 200);
  await d.waitLog((l) => /^kafka delivery failed/.test(String(l.msg)) && l.code === 'ERR_UNKNOWN_TOPIC_OR_PART');
  for (const id of uk.slice(10)) t.equal((await request(d.port, `/track?id=${id}`, { host: 'uk.test' })).status, 200);
  for (const id of gr) t.equal((await request(d.port, `/track?id=${id}`, { host: 'gr.test' })).status, 200);
  const began = Date.now();
  t.equal(await d.stop(), 0, 'a clean exit');
  t.ok(Date.now() - began < 5000, `within the drain timeout (${Date.now() - began} ms)`);
  const c = drainedCounters(d.logs, 'kafka');
  t.equal(c.dropped, 0, 'none dropped at shutdown: uk\'s Lines stay in the spool');

  const d2 = await startKafkaDaemon(kafka.bootstrap, { topics: d.topics, kafka: kafkaOpts });
  t.teardown(() => d2.stop());
  await until('the spool empty', () => spoolHoldsNothing(d2), 30_000);
  t.equal((await kafkaCounters(d2)).dropped, uk.length, 'uk\'s Lines dropped and counted');
  t.equal(await d2.stop(), 0);
  const got = idCounts((await topicNow(kafka.bootstrap, d.topics.gr!)).map((m) => m.value));
  t.same(gr.filter((id) => !got.has(id)), [], 'gr\'s Lines in its topic');
});

t.test('a Line over the topic\'s size limit: refused by the broker, counted, the small ones around it delivered', async (t: Test) => {
  // librdkafka's batches stay under the limit (batch.size); the big Line goes alone.
  const d = await startKafkaDaemon(kafka.bootstrap, {
    config: { limits: { maxBodyBytes: 131072 } },
    kafka: { rdkafka: { 'batch.size': MAX_MESSAGE / 2 } },
  });
  t.teardown(() => d.stop());
  await kafka.createTopic(d.topics.tr!, 1, { 'max.message.bytes': String(MAX_MESSAGE) });
  const sends: Promise<number>[] = [];
  for (let i = 0; i < 50; i++) {
    sends.push(request(d.port, `/track?id=${i}`, { host: 'tr.test' }).then((r) => r.status));
    if (i === 25) {
      // Random text: lz4 cannot shrink it under the limit.
      const body = `id=big&pad=${randomBytes(48_000).toString('base64url')}`;
      sends.push(request(d.port, '/track', { host: 'tr.test', method: 'POST', headers: { 'content-type': 'text/plain' }, body }).then((r) => r.status));
    }
  }
  t.same([...new Set(await Promise.all(sends))].sort(), [200, 204], 'all answered');
  await until('51 Lines in the file', () => fileCount(d, 'tr') === 51);
  const got = await consume(kafka.bootstrap, d.topics.tr!, { count: 50, settleMs: 1500, timeoutMs: 30_000 });
  const counts = idCounts(got.map((m) => m.value));
  t.same(Array.from({ length: 50 }, (_, i) => String(i)).filter((id) => !counts.has(id)).slice(0, 10), [], 'every small Line delivered');
  t.notOk(counts.has('big'), 'the big one is not in Kafka');
  await until('a failed delivery logged', () => d.logs.some((l) => l.msg === 'kafka delivery failed, Line dropped'));
  t.comment(`errors logged: ${JSON.stringify(errors(d))}`);
  t.match(await kafkaCounters(d), { persisted: 50, failed: 1, dropped: 1 }, 'the big one counted as failed and dropped');
  t.equal(await d.stop(), 0);
  t.match(drainedCounters(d.logs, 'file'), { persisted: 51, dropped: 0 });
});

t.test('producer batches larger than the topic accepts: whole batches of small Lines refused, counted, never silent', async (t: Test) => {
  // The operator's trap: librdkafka's batch.size (default 1 000 000) over the
  // topic's max.message.bytes. Lines that each fit are refused batch by batch
  // as soon as batches grow: after any outage, when the backlog goes out in
  // full batches (a broker killed under load lost 10 000 Lines this way), or,
  // as here, with a longer linger.
  const d = await startKafkaDaemon(kafka.bootstrap, { kafka: { rdkafka: { 'linger.ms': 300 } } });
  t.teardown(() => d.stop());
  await kafka.createTopic(d.topics.tr!, 1, { 'max.message.bytes': String(MAX_MESSAGE) });
  // 800 incompressible bytes a Line (each its own: lz4 would fold repeats): 20 of them pass the limit.
  const sends: Promise<number>[] = [];
  for (let i = 0; i < 200; i++) {
    sends.push(request(d.port, `/track?id=${i}&pad=${randomBytes(600).toString('base64url')}`, { host: 'tr.test' }).then((r) => r.status));
  }
  t.same([...new Set(await Promise.all(sends))], [200]);
  await until('200 Lines in the file', () => fileCount(d, 'tr') === 200);
  await until('a failed delivery logged', () => d.logs.some((l) => l.msg === 'kafka delivery failed, Line dropped'));
  t.equal(await d.stop(), 0);
  t.comment(`errors logged: ${JSON.stringify(errors(d))}`);
  const c = drainedCounters(d.logs, 'kafka');
  t.comment(`kafka counters: ${JSON.stringify(c)}`);
  t.ok(c.dropped! > 0, 'Lines refused with their batch');
  t.equal(c.persisted! + c.dropped!, 200, 'each Line delivered or counted as dropped');
  t.equal(c.failed, c.dropped);
  t.match(drainedCounters(d.logs, 'file'), { persisted: 200, dropped: 0 });
});

t.test('a Line over librdkafka\'s own message.max.bytes never leaves the process: counted', async (t: Test) => {
  const d = await startKafkaDaemon(kafka.bootstrap, { kafka: { rdkafka: { 'message.max.bytes': 4096 } } });
  t.teardown(() => d.stop());
  await withTopics(d, 'tr');
  t.equal((await request(d.port, `/track?id=local&pad=${'x'.repeat(5000)}`, { host: 'tr.test' })).status, 200);
  t.equal((await request(d.port, '/track?id=fits', { host: 'tr.test' })).status, 200);
  await d.waitLog((l) => l.msg === 'kafka refused a Line, dropped');
  t.equal(await d.stop(), 0);
  t.comment(`errors logged: ${JSON.stringify(errors(d))}`);
  t.match(drainedCounters(d.logs, 'kafka'), { failed: 1, dropped: 1, persisted: 1 });
  t.match(drainedCounters(d.logs, 'file'), { persisted: 2 });
});
