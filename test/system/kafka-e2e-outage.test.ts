/**
 * The built daemon while its Kafka broker is paused, killed or absent, and
 * while its file backend fails: the other backend and the HTTP answers do
 * not notice. These tests break their broker, so they always start their
 * own (KAFKA_BOOTSTRAP is ignored here, and says so); they never skip.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { consume } from '../helpers/consume.js';
import { drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { startKafka, waitForMetadata } from '../helpers/kafka.js';
import { health, idCounts, startKafkaDaemon, stats, topicNow, traffic, type KafkaDaemon } from '../helpers/kafka-daemon.js';
import { sleep, until } from '../helpers/wait.js';
import type { Test } from 'tap';

const kafka = await startKafka({ owned: true });
t.teardown(() => kafka.stop());
t.afterEach(async () => {
  await kafka.resume();
  // A test that left the broker dead: started at once, not after 5 s of asking it.
  if (!kafka.alive()) await kafka.restart();
  await waitForMetadata(kafka.bootstrap, 5000).catch(() => kafka.restart());
});

/**
 * An HTTP answer slower than this while a backend is down would mean the
 * request path waits on it (it would wait for the whole outage). Not tighter:
 * on a loaded CI machine the client itself can stall for hundreds of ms.
 */
const SLOW_MS = 2000;

/**
 * Every id answered so far reaches the file within a few seconds, while the
 * outage goes on for longer (the file backend is not held up). The file
 * backend batches, and a loaded machine is slow: wait for it, up to a bound.
 */
async function fileKeepsUp(t: Test, d: KafkaDaemon, flavor: string, answered: () => readonly string[]): Promise<void> {
  const snapshot = new Set(answered());
  const missing = (): string[] => {
    const inFile = new Set(d.fileLines(flavor).map((l) => (JSON.parse(l) as { id: string }).id));
    return [...snapshot].filter((id) => !inFile.has(id));
  };
  await until('the answered Lines in the file', () => missing().length === 0, 5000).catch(() => {});
  t.same(missing(), [], `all ${snapshot.size} answered so far are in the file`);
}

/** With `stopped` (the daemon has exited), the topic is read to its end at once; otherwise until every id came and 2 s more. */
async function expectDelivered(t: Test, d: KafkaDaemon, flavor: string, ids: string[], stopped = false): Promise<void> {
  const got = stopped ? await topicNow(kafka.bootstrap, d.topics[flavor]!) : await consume(kafka.bootstrap, d.topics[flavor], { count: ids.length, settleMs: 2000, timeoutMs: 120_000 });
  const counts = idCounts(got.map((m) => m.value));
  t.same(ids.filter((id) => !counts.has(id)), [], `every one of ${ids.length} answered Lines reached Kafka`);
  t.equal([...counts.values()].filter((c) => c > 1).length, 0, 'none twice');
}

for (const how of ['paused', 'killed'] as const) {
  t.test(`broker ${how} under steady traffic until health tells, then back`, async (t) => {
    const d = await startKafkaDaemon(kafka.bootstrap);
    t.teardown(() => d.stop());
    const tr = traffic(d, 'gr.test');
    await until('Lines delivered before the outage', async () => (await stats(d)).backends.kafka.persisted >= 100, 30_000);
    if (how === 'paused') await kafka.pause();
    else await kafka.kill();
    const downAt = Date.now();
    await sleep(3000);
    await fileKeepsUp(t, d, 'gr', () => tr.ok);
    // A killed broker is noticed at once; a paused one keeps its connections,
    // and only the missing delivery reports (STALL_MS) tell. Either outage
    // lasts at least 6 s: past librdkafka's reconnect backoff (2 s).
    // Bounded: STALL_MS and a margin, never librdkafka's own socket timeout (60 s).
    await until('kafka health not ok', async () => (await health(d)).body.backends.kafka?.state !== 'ok', 25_000).catch(() => {});
    await sleep(Math.max(0, downAt + 6000 - Date.now()));
    t.comment(`outage lasted ${Date.now() - downAt} ms`);
    const h = await health(d);
    t.not(h.body.backends.kafka?.state, 'ok', `kafka health during the outage: ${JSON.stringify(h.body.backends.kafka)}`);
    t.equal(h.body.backends.file?.state, 'ok', 'file health unaffected');
    if (how === 'paused') await kafka.resume();
    else await kafka.restart();
    // Traffic goes on until the backend is back.
    await until('kafka health ok again', async () => (await health(d)).body.backends.kafka?.state === 'ok', 30_000);
    const { ok, bad, slowestMs } = await tr.stop();
    t.same(bad, [], 'every request answered 200');
    t.ok(slowestMs < SLOW_MS, `slowest answer ${slowestMs.toFixed(1)} ms`);
    t.ok(ok.length > 1000, `${ok.length} requests over the outage`);
    await fileKeepsUp(t, d, 'gr', () => ok);
    t.equal(await d.stop(), 0);
    await expectDelivered(t, d, 'gr', ok, true);
    t.match(drainedCounters(d.logs, 'kafka'), { persisted: ok.length, dropped: 0 });
    t.match(drainedCounters(d.logs, 'file'), { persisted: ok.length, dropped: 0 });
  });
}

t.test('broker absent at start-up: scratchd starts, serves, and delivers once the broker appears', async (t) => {
  await kafka.kill();
  const d = await startKafkaDaemon(kafka.bootstrap);
  t.teardown(() => d.stop());
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) {
    const r = await request(d.port, `/track?id=${i}`, { host: 'tr.test' });
    t.equal(r.status, 200, `request ${i}`, { diagnostic: r.status !== 200 });
    ids.push(String(i));
  }
  const h = await health(d);
  t.equal(h.body.backends.kafka?.state, 'down', `kafka down: ${h.body.backends.kafka?.reason}`);
  t.equal(h.status, 503, 'stats /health says 503 while a backend is down');
  await until('100 Lines in the file', () => d.fileLines('tr').length === 100, 10_000).catch(() => {}); // the file backend batches
  t.equal(d.fileLines('tr').length, 100, 'the file has them all meanwhile');
  await kafka.restart();
  await expectDelivered(t, d, 'tr', ids);
  t.equal((await health(d)).body.backends.kafka?.state, 'ok');
  t.equal(await d.stop(), 0);
  t.match(drainedCounters(d.logs, 'kafka'), { persisted: 100, dropped: 0 });
});

t.test('a failing file backend does not delay or lose Kafka messages', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, {
    user: { uid: 65534, gid: 65534 },
    file: { retryMs: 50 },
    kafka: { flushTimeoutMs: 2000 },
    config: { shutdown: { graceMs: 0, drainTimeoutMs: 3000 } },
  });
  t.teardown(() => d.stop());
  mkdirSync(join(d.dir, 'log'), { mode: 0o755 }); // root's, the daemon runs as nobody: every write fails
  const tr = traffic(d, 'uk.test');
  await until('file health not ok', async () => (await health(d)).body.backends.file?.state !== 'ok', 30_000).catch(() => {});
  await sleep(1000); // traffic goes on with the file backend failing
  const h = await health(d);
  t.not(h.body.backends.file?.state, 'ok', `file health: ${JSON.stringify(h.body.backends.file)}`);
  t.equal(h.body.backends.kafka?.state, 'ok', 'kafka health unaffected');
  const { ok, bad, slowestMs } = await tr.stop();
  t.same(bad, []);
  t.ok(slowestMs < SLOW_MS, `slowest answer ${slowestMs.toFixed(1)} ms`);
  // Kafka keeps up while the file backend retries: delivered within a second or so.
  const began = Date.now();
  await expectDelivered(t, d, 'uk', ok);
  t.ok(Date.now() - began < 30_000, `delivered in ${Date.now() - began} ms (not held until the file backend recovers: it never does here)`);
  t.equal(d.fileLines('uk').length, 0, 'nothing in the file');
  // The file backend cannot drain: main exits 2 at drainTimeoutMs, Kafka has all by then.
  t.equal(await d.stop(), 2);
});

t.test('SIGTERM while the broker is down: files complete, Kafka gives up after flushTimeoutMs and counts the loss', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, {
    kafka: { flushTimeoutMs: 1000 },
    config: { shutdown: { graceMs: 0, drainTimeoutMs: 10_000 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.kill();
  for (let i = 0; i < 50; i++) t.equal((await request(d.port, `/track?id=${i}`, { host: 'gr.test' })).status, 200);
  const began = Date.now();
  t.equal(await d.stop(), 0, 'exit 0: within the drain timeout');
  t.ok(Date.now() - began < 8000, `stopped in ${Date.now() - began} ms: after flushTimeoutMs, not the drain timeout`);
  t.equal(d.fileLines('gr').length, 50, 'the file has every Line');
  t.match(drainedCounters(d.logs, 'file'), { persisted: 50 });
  t.match(drainedCounters(d.logs, 'kafka'), { persisted: 0, dropped: 50 }, 'Kafka counts what it could not deliver');
  t.ok(d.logs.some((l) => l.component === 'kafka' && String(l.msg).includes('dropped')), 'and says so in the log');
});
