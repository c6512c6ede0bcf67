/**
 * Lines in doubt (src/kafka/doubt.ts): a broker that writes the Lines but
 * whose acknowledgements never come back (a proxy swallows its answers),
 * then SIGTERM. The Lines librdkafka held go to the spool, and the next
 * start reads the topic back before it sends them: those Kafka already has
 * are not sent again. Every answered Line is in the topic exactly once, and
 * `persisted` over both runs equals the answered count; Lines alike under
 * load (same topic, time and bytes) in the same run are all there too. Then
 * the same under further faults: a restart whose read-back cannot reach the
 * broker and is stopped by SIGTERM (the proxy refuses every connection);
 * Lines alike in two runs; a deleted topic; a re-pointed flavor; SIGTERM in
 * the middle of a long read-back.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import t from 'tap';
import type { Test } from 'tap';
import { drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { idCounts, spoolHoldsNothing, startKafkaDaemon, stats, topicHolds, topicNow, traffic, waitFor } from '../helpers/kafka-daemon.js';
import { spoolDir } from '../helpers/kafka-spool.js';
import { metadata, startKafka } from '../helpers/kafka.js';
import { startMuteProxy } from '../helpers/mute-proxy.js';
import { sleep, stablePort } from '../helpers/wait.js';

const port = await stablePort();
const proxy = await startMuteProxy(port);
t.teardown(() => proxy.close());
// Clients learn the broker's address from its metadata: the proxy's.
const kafka = await startKafka({ owned: true, ports: { port, controllerPort: await stablePort() }, props: [`advertised.listeners=PLAINTEXT://127.0.0.1:${proxy.port}`] });
t.teardown(() => kafka.stop());
const viaProxy = `127.0.0.1:${proxy.port}`;

const heldLog = 'kafka: Lines librdkafka still held at shutdown written to the spool';
const readBackLog = 'kafka: Lines in doubt read back; those found in the topic are not sent again';
type ReadBack = { inDoubt?: number; found?: number; time?: string } | undefined;
type KafkaOptions = Parameters<typeof startKafkaDaemon>[1];

/** Kafka options of every run: a short flush, since the runs that leave Lines in doubt wait it out in full. */
const kafkaOpts = (dir: string) => ({ flushTimeoutMs: 1000, spool: { dir, fsyncMs: 100 } });

/**
 * The first run of most cases: traffic to gr.test through the proxy until
 * Kafka has acknowledged some of it, then the broker's answers swallowed
 * until it has written Lines that get no report and more are queued behind
 * them, then SIGTERM. The Lines librdkafka held go to the spool and the
 * doubt file is written. With `withAlike`, 8 clients also send
 * `/track?id=same` to tr.test as fast as they can (many Lines alike in each
 * millisecond); `alike` counts those answered.
 */
async function linesInDoubt(t: Test, dir: string, opts: KafkaOptions, withAlike = false) {
  proxy.unmute();
  const d = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const tr = traffic(d, 'gr.test', 8, 2);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let stopped = false, alike = 0;
  const alikeClient = async (): Promise<void> => {
    while (!stopped) {
      const r = await request(d.port, '/track?id=same', { host: 'tr.test', agent });
      if (r.status === 200) alike++;
    }
  };
  const clients = withAlike ? Array.from({ length: 8 }, alikeClient) : [];
  await waitFor('Lines acknowledged', async () => (await stats(d)).backends.kafka.persisted >= 300);
  proxy.mute();
  await waitFor('Lines written whose acknowledgements are swallowed', () => proxy.swallowed > 0);
  // More Lines behind those, so that some were never sent at all.
  const answered = tr.answered;
  await waitFor('Lines answered after the mute', () => tr.answered >= answered + 200);
  const first = await tr.stop();
  stopped = true;
  await Promise.all(clients);
  agent.destroy();
  t.same(first.bad, []);
  t.equal(await d.stop(), 0);
  const held = (d.logs.find((l) => l.msg === heldLog) as { lines?: number } | undefined)?.lines ?? 0;
  t.ok(held > 0, `${held} Lines sent without a report at shutdown`);
  t.ok(existsSync(join(dir, 'in-doubt.json')), 'the doubt file is written');
  return { d, first, held, alike };
}

t.test('acknowledgements lost, SIGTERM, restart: the Lines Kafka already had are not sent again; Lines alike under load: the topic holds as many as were answered', async (t) => {
  const topic = 'in-doubt.gr', same = 'in-doubt-faults.same';
  await kafka.createTopic(topic, 3);
  await kafka.createTopic(same, 3);
  const dir = spoolDir();
  const opts = { topics: { gr: topic, tr: same }, kafka: kafkaOpts(dir) };
  const { d, first, alike } = await linesInDoubt(t, dir, opts, true);

  proxy.unmute();
  const d2 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d2.stop());
  await waitFor('the spool empty', () => spoolHoldsNothing(d2), 60_000).catch(() => {});
  t.equal(await d2.stop(), 0);
  const readBack = d2.logs.find((l) => l.msg === readBackLog) as ReadBack;
  t.ok((readBack?.found ?? 0) > 0, `found in the topic: ${readBack?.found} of ${readBack?.inDoubt} in doubt`);
  const c = await topicHolds(kafka.bootstrap, topic, first.ok, { stopped: true });
  t.same(c.missing, [], `every one of ${first.ok.length} answered Lines in the topic`);
  t.equal(c.duplicated, 0, 'none twice');
  const got = await topicNow(kafka.bootstrap, same);
  t.equal(got.length, alike, `${got.length} of ${alike} answered Lines alike in the topic`);
  const run1 = drainedCounters(d.logs, 'kafka'), run2 = drainedCounters(d2.logs, 'kafka');
  t.equal(run1.persisted + run2.persisted, first.ok.length + alike, `persisted over both runs (${run1.persisted} + ${run2.persisted}) = the Lines answered`);
  t.equal(run1.dropped + run2.dropped, 0, 'nothing dropped');
  t.notOk(existsSync(join(dir, 'in-doubt.json')), 'the doubt file is gone once its Lines are settled');
});

t.test('SIGTERM while the read-back waits for a broker that is gone: the shutdown keeps its deadline and no Line is lost', async (t) => {
  const topics = { gr: 'in-doubt-faults.gr', tr: 'in-doubt-faults.tr' };
  await kafka.createTopic(topics.gr, 3);
  await kafka.createTopic(topics.tr, 3);
  const dir = spoolDir();
  const drainTimeoutMs = 4000;
  const opts = { topics, config: { shutdown: { drainTimeoutMs } }, kafka: kafkaOpts(dir) };

  // Run 1: Lines written, their acknowledgements swallowed, SIGTERM: Lines in doubt.
  const { first } = await linesInDoubt(t, dir, opts);

  // Run 2: the broker unreachable; its Lines go to the spool while the read-back retries.
  proxy.cut();
  const d2 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d2.stop());
  const tr2 = traffic(d2, 'tr.test', 4, 5);
  await d2.waitLog((l) => l.msg === 'kafka: reading Lines in doubt back failed; retrying', 30_000);
  const second = await tr2.stop();
  t.same(second.bad, []);
  t.equal(await d2.stop(), 0, 'exit 0');
  t.notOk(d2.logs.some((l) => l.msg === 'drain timed out; queued Lines lost'), 'the drain did not time out');
  const drained = d2.logs.find((l) => l.msg === 'drained') as { ms?: number } | undefined;
  t.ok(drained !== undefined && drained.ms! < drainTimeoutMs, `drained in ${drained?.ms} ms, within drainTimeoutMs ${drainTimeoutMs}`);

  // Run 3: the broker back: every Line of both runs in its topic, once.
  proxy.unmute();
  const d3 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d3.stop());
  await waitFor('the spool empty', () => spoolHoldsNothing(d3), 60_000).catch(() => {});
  t.equal(await d3.stop(), 0);
  const gr = await topicHolds(kafka.bootstrap, topics.gr, first.ok, { stopped: true });
  t.same(gr.missing, [], `run 1: every one of ${first.ok.length} answered Lines in the topic`);
  t.equal(gr.duplicated, 0, 'run 1: none twice');
  const tr = await topicHolds(kafka.bootstrap, topics.tr, second.ok, { stopped: true });
  t.same(tr.missing, [], `run 2: every one of ${second.ok.length} answered Lines in the topic`);
  t.equal(tr.duplicated, 0, 'run 2: none twice');
});

/** `bulks` bulk requests of `per` Lines alike each, sent one after the other; all answered 204. */
async function sameLines(t: Test, port: number, bulks: number, per: number): Promise<void> {
  const body = JSON.stringify({ requests: Array.from({ length: per }, () => '?id=same') });
  for (let i = 0; i < bulks; i++) {
    const r = await request(port, '/track', { method: 'POST', host: 'gr.test', body, headers: { 'content-type': 'application/json' } });
    if (r.status !== 204) t.fail(`bulk answered ${r.status}`);
  }
}

t.test('Lines alike in an earlier run are not taken for Lines in doubt: none is skipped that Kafka lacks', async (t) => {
  // Two identical requests in the same millisecond are two Lines with one
  // fingerprint. Here the two runs' Lines share their milliseconds (the
  // clock is set back to the same instant before each burst): a run that
  // ends with Lines in doubt and no acknowledgement at all reads every
  // partition from the oldest Line in doubt's time, where the earlier run's
  // delivered Lines alike are too.
  const topic = 'in-doubt-faults.alike';
  await kafka.createTopic(topic, 3);
  const dir = spoolDir();
  const opts = { topics: { gr: topic }, clock: Date.now(), kafka: kafkaOpts(dir) };
  const T = Date.now() - 60_000;
  const bulks = 10, per = 5;

  // Run 0: delivered, acknowledged, a clean stop.
  proxy.unmute();
  const d0 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d0.stop());
  await d0.waitLog((l) => l.msg === 'kafka producer connected');
  await d0.setClock(T);
  await sameLines(t, d0.port, bulks, per);
  t.equal(await d0.stop(), 0);
  t.notOk(existsSync(join(dir, 'in-doubt.json')), 'nothing in doubt after run 0');

  // Run 1: the broker black-holed before any acknowledgement; the same Lines held by librdkafka at SIGTERM.
  const d1 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d1.stop());
  await d1.waitLog((l) => l.msg === 'kafka producer connected');
  proxy.blackHole();
  await d1.setClock(T);
  await sameLines(t, d1.port, bulks, per);
  t.equal(await d1.stop(), 0);
  t.ok(existsSync(join(dir, 'in-doubt.json')), 'Lines in doubt after run 1');

  // Run 2: read back, then drained.
  proxy.unmute();
  const d2 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d2.stop());
  await waitFor('the spool empty', () => spoolHoldsNothing(d2), 60_000).catch(() => {});
  t.equal(await d2.stop(), 0);
  const readBack = d2.logs.find((l) => l.msg === readBackLog) as ReadBack;
  const got = await topicNow(kafka.bootstrap, topic);
  t.equal(got.length, 2 * bulks * per,
    `every answered Line in the topic: ${got.length} of ${2 * bulks * per} (read back: ${readBack?.found} of ${readBack?.inDoubt} in doubt taken as already there)`);
});

t.test('a topic in doubt deleted before the restart: the read-back does not hold the spool back', async (t) => {
  const topic = 'in-doubt-faults.gone';
  await kafka.createTopic(topic, 3);
  const dir = spoolDir();
  const opts = { topics: { gr: topic }, kafka: kafkaOpts(dir) };
  const { first } = await linesInDoubt(t, dir, opts);
  proxy.unmute();
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': kafka.bootstrap });
  await new Promise<void>((resolve, reject) => admin.deleteTopic(topic, 10_000, (err) => (err ? reject(err) : resolve())));
  admin.disconnect();
  await waitFor('the topic gone from the metadata', async () => !(await metadata(kafka.bootstrap, undefined, 5000)).topics.some((x) => x.name === topic));

  const d2 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d2.stop());
  await waitFor('the spool empty', () => spoolHoldsNothing(d2), 30_000).catch(() => {});
  t.ok(await spoolHoldsNothing(d2), `the spool drained (${first.ok.length} Lines of run 1)`);
  t.ok(d2.logs.some((l) => l.msg === readBackLog), 'the read-back ended');
  t.equal(await d2.stop(), 0);
});

t.test('a flavor re-pointed to another topic before the restart: its Lines all go there, and the doubt file does not outlive them', async (t) => {
  const before = 'in-doubt-faults.before', after = 'in-doubt-faults.after';
  await kafka.createTopic(before, 3);
  await kafka.createTopic(after, 3);
  const dir = spoolDir();
  const opts = { kafka: kafkaOpts(dir) };
  const { held } = await linesInDoubt(t, dir, { ...opts, topics: { gr: before } });

  proxy.unmute();
  const d2 = await startKafkaDaemon(viaProxy, { ...opts, topics: { gr: after } });
  t.teardown(() => d2.stop());
  await waitFor('the spool empty', () => spoolHoldsNothing(d2), 30_000).catch(() => {});
  const readBack = d2.logs.find((l) => l.msg === readBackLog) as ReadBack;
  t.ok((readBack?.found ?? 0) > 0, `found in the old topic: ${readBack?.found} of ${readBack?.inDoubt}`);
  t.equal(await d2.stop(), 0);
  const got = await topicNow(kafka.bootstrap, after);
  t.equal(got.length, held, `every one of ${held} Lines in doubt sent to the new topic`);
  t.notOk(existsSync(join(dir, 'in-doubt.json')), 'no doubt file once the spool is empty');
});

/** Messages of other producers in the busy topic: enough that reading them back outlasts the pause before SIGTERM. */
const FILL = 400_000;

/** `n` messages of no instance of scratchd's (no headers) into `topic`: what a busy shared topic holds. */
async function fill(bootstrap: string, topic: string, n: number): Promise<void> {
  const p = new Kafka.Producer({ 'metadata.broker.list': bootstrap, 'linger.ms': 20, 'queue.buffering.max.messages': 2_000_000 });
  await new Promise<void>((resolve, reject) => p.connect({}, (err) => (err ? reject(err) : resolve())));
  const value = Buffer.from('{"other":"producer","pad":"................................"}');
  for (let i = 0; i < n; i++) p.produce(topic, null, value, null, Date.now());
  await new Promise<void>((resolve, reject) => p.flush(60_000, (err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve) => p.disconnect(() => resolve()));
}

t.test('SIGTERM in the middle of a long read-back: a prompt exit 0, and the next start still finds the Lines in doubt', async (t) => {
  const topic = 'in-doubt-faults.busy';
  await kafka.createTopic(topic, 3);
  const dir = spoolDir();
  const opts = { topics: { gr: topic }, kafka: kafkaOpts(dir) };
  const { first } = await linesInDoubt(t, dir, opts);
  proxy.unmute();
  await fill(kafka.bootstrap, topic, FILL);

  // Run 2: SIGTERM while it reads.
  const d2 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d2.stop());
  await d2.waitLog((l) => l.msg === 'serving');
  await sleep(1500);
  t.notOk(d2.logs.some((l) => l.msg === readBackLog), 'still reading at SIGTERM');
  t.equal(await d2.stop(), 0, 'exit 0');
  const drained = d2.logs.find((l) => l.msg === 'drained') as { ms?: number } | undefined;
  t.ok(drained !== undefined && drained.ms! < 10_000, `drained in ${drained?.ms} ms`);

  // Run 3: read back in full, every answered Line once.
  const d3 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d3.stop());
  await waitFor('the spool empty', () => spoolHoldsNothing(d3), 60_000).catch(() => {});
  t.equal(await d3.stop(), 0);
  const readBack = d3.logs.find((l) => l.msg === readBackLog) as ReadBack;
  const opened = d3.logs.find((l) => l.msg === 'kafka spool opened') as { time?: string } | undefined;
  const readMs = Date.parse(String(readBack?.time)) - Date.parse(String(opened?.time));
  t.ok((readBack?.found ?? 0) > 0, `found in the topic: ${readBack?.found} of ${readBack?.inDoubt}, read back in ${readMs} ms`);
  const got = await topicNow(kafka.bootstrap, topic);
  const counts = idCounts(got.filter((m) => m.headers.instance !== undefined).map((m) => m.value));
  t.same(first.ok.filter((id) => !counts.has(id)), [], `every one of ${first.ok.length} answered Lines in the topic`);
  t.equal([...counts.values()].reduce((n, c) => n + c - 1, 0), 0, 'none twice');
});
