/**
 * Delivery reports as librdkafka gives them, against a real broker that is
 * killed and paused (a private one: KAFKA_BOOTSTRAP ignored; never skips):
 *   - topic-level settings reach librdkafka (an operator's message.timeout.ms
 *     is applied; test/unit/kafka-scope.test.ts shows the conf dump);
 *   - a delivery error is told by its code, so a retriable one re-spools a
 *     normal Line and rewinds a spooled record, and nothing is lost;
 *   - each report is matched to its own Line: after a pause, a resume and a
 *     kill 40 ms later, then SIGTERM and a restart, every answered Line is in
 *     the topic exactly once (what was in doubt is read back first), and the
 *     counters equal what the topic holds;
 *   - a failure's loss window carries the Line's own flavor and arrival time;
 *   - a reload's flavors decide the topic of spooled Lines;
 *   - a start against a healthy broker is quiet;
 *   - a drainer error is retried, counted and logged, never final.
 */
import t from 'tap';
import { drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { health, stats, traffic, waitFor } from '../helpers/kafka-daemon.js';
import { spoolDir, startSpoolDaemon } from '../helpers/kafka-spool.js';
import { ownedBroker, startKafkaDaemon, spoolHoldsNothing } from '../helpers/kafka-daemon.js';
import { sleep } from '../helpers/wait.js';

const { kafka, newTopic, check } = await ownedBroker(t, 'delivery');
const spoolEmpty = spoolHoldsNothing;

t.test('an operator\'s message.timeout.ms reaches librdkafka; the loss windows carry each Line\'s own flavor and time', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 1);
  // gr and tr share the topic: a failure of one must not open a window of the other.
  const d = await startKafkaDaemon(kafka.bootstrap, {
    topics: { gr: topic, tr: topic },
    kafka: { flushTimeoutMs: 1000, rdkafka: { 'message.timeout.ms': 2000 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.kill();
  const sentAt: Record<string, number[]> = { gr: [], tr: [] };
  for (let i = 0; i < 20; i++) {
    const flavor = i % 2 === 0 ? 'gr' : 'tr';
    if (i === 10) await sleep(1500); // the windows span 1.5 s and more
    sentAt[flavor]!.push(Date.now());
    t.equal((await request(d.port, `/track?id=${i}`, { host: `${flavor}.test` })).status, 200);
  }
  // Within the operator's timeout, not librdkafka's default (5 min): each Line expires and is counted.
  await waitFor('20 Lines timed out', async () => (await stats(d)).backends?.kafka?.dropped === 20, 20_000).catch(() => {});
  const s = await stats(d);
  t.equal(s.backends?.kafka?.dropped, 20, 'every Line timed out after message.timeout.ms and was counted');
  const windows = [...(s.loss_windows?.open ?? []), ...(s.loss_windows?.recent ?? [])] as { flavor: string; from: string; to: string; count: number; reasons: Record<string, number> }[];
  for (const flavor of ['gr', 'tr']) {
    const w = windows.filter((x) => x.flavor === flavor);
    t.equal(w.length, 1, `one window for ${flavor}`);
    t.equal(w[0]?.count, 10, `${flavor}: its own 10 Lines`);
    t.same(w[0]?.reasons, { delivery_failed: 10 });
    const from = Date.parse(w[0]?.from ?? ''), to = Date.parse(w[0]?.to ?? '');
    const first = sentAt[flavor]![0]!, last = sentAt[flavor]!.at(-1)!;
    // Arrival times, not the time of the failure (2 s later): the window spans the requests.
    t.ok(from >= first - 50 && from <= first + 1000, `${flavor}: from is the first Line's arrival (${from - first} ms)`);
    // A Kafka window runs on to its last drop (losses.ts): a replay of it must also find a POST
    // written when its body came; the drops come message.timeout.ms (2 s) after the last arrival.
    t.ok(to >= last - 50 && to <= last + 2000 + 3000, `${flavor}: to covers the last Line, and ends at its drop (${to - last} ms)`);
    t.ok(to - from >= 1000, `${flavor}: the window spans the Lines (${to - from} ms)`);
  }
  t.equal(await d.stop(), 0);
});

t.test('retriable delivery errors (a paused broker, message.timeout.ms 2 s): normal Lines re-spooled, spooled records rewound; none lost', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 1);
  const d = await startKafkaDaemon(kafka.bootstrap, {
    topics: { gr: topic },
    kafka: { flushTimeoutMs: 2000, rdkafka: { 'message.timeout.ms': 2000 }, spool: { dir: spoolDir(), fsyncMs: 100 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const tr = traffic(d, 'gr.test', 4, 5);
  await waitFor('Lines delivered before the pause', async () => (await stats(d)).backends.kafka.persisted >= 100, 30_000);
  // A paused broker keeps its connection: librdkafka sends a few requests
  // and queues the rest, and those time out after message.timeout.ms (the
  // ones sent never do), so the normal path re-spools them.
  await kafka.pause();
  await d.waitLog((l) => l.msg === 'kafka delivery failed, Line re-spooled', 15_000);
  await kafka.resume();
  // The drainer is under way at once (the spool holds the re-spooled Lines):
  // a second pause times out the records it produced, which are rewound.
  await kafka.pause();
  await d.waitLog((l) => l.msg === 'kafka delivery from the spool failed, will retry', 15_000);
  await kafka.resume();
  await sleep(1000);
  const { ok, bad } = await tr.stop();
  t.same(bad, []);
  await waitFor('the spool empty', () => spoolEmpty(d), 60_000).catch(() => {});
  const s = await stats(d);
  t.equal(await d.stop(), 0);
  const c = await check(topic, ok, { stopped: true });
  t.same(c.missing, [], `every one of ${ok.length} answered Lines in the topic`);
  t.equal(s.backends?.kafka?.dropped, 0, 'nothing dropped');
  t.ok(s.backends?.kafka?.retried > 0, `retried ${s.backends?.kafka?.retried}`);
  t.ok(d.logs.some((l) => l.msg === 'kafka delivery failed, Line re-spooled' && l.code === 'ERR__MSG_TIMED_OUT'), 'a normal Line re-spooled on a timeout');
  t.ok(d.logs.some((l) => l.msg === 'kafka delivery from the spool failed, will retry' && l.code === 'ERR__MSG_TIMED_OUT'), 'a spooled record rewound on a timeout');
  // librdkafka times out messages it has sent too (a paused broker still
  // writes them when it resumes): with message.timeout.ms set, those are
  // sent again. docs/kafka.md says so; the default (0) never times out.
  t.comment(`${c.duplicated} duplicates`);
});

t.test('paused 10 s under load, resumed, killed 40 ms later, SIGTERM, restart: every Line once, counters equal the topic', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 3); // unkeyed over 3 partitions: reports of one topic interleave
  const dir = spoolDir();
  const opts = { topics: { gr: topic }, kafka: { flushTimeoutMs: 2000 } };
  const d = await startKafkaDaemon(kafka.bootstrap, { ...opts, kafka: { ...opts.kafka, spool: { dir, fsyncMs: 100 } } });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const tr = traffic(d, 'gr.test', 8, 2);
  await waitFor('Lines delivered before the pause', async () => (await stats(d)).backends.kafka.persisted >= 100, 30_000);
  await kafka.pause();
  await sleep(3000);
  t.equal((await health(d)).body.backends.kafka?.state, 'ok', 'ok for the first seconds of a pause');
  await waitFor('health says spooling', async () => (await health(d)).body.backends.kafka?.state === 'spooling', 10_000).catch(() => {});
  const h = await health(d);
  t.equal(h.body.backends.kafka?.state, 'spooling', `a black-holed broker: ${h.body.backends.kafka?.reason}`);
  await sleep(4000);
  await kafka.resume();
  await sleep(40);
  await kafka.kill();
  await sleep(500);
  const first = await tr.stop();
  t.same(first.bad, []);
  let stderr = '';
  d.proc.stderr!.on('data', (c: Buffer | string) => { stderr += String(c); });
  const exit = await d.stop();
  t.equal(exit, 0, `exit 0 (${d.proc.signalCode ?? ''} ${stderr.slice(-3000)}; last log lines: ${JSON.stringify(d.logs.slice(-5).map((l) => l.msg))})`);
  const run1 = drainedCounters(d.logs, 'kafka');
  t.equal(run1.dropped, 0, 'nothing dropped in the first run');

  const d2 = await startKafkaDaemon(kafka.bootstrap, { ...opts, kafka: { ...opts.kafka, spool: { dir, fsyncMs: 100 } } });
  t.teardown(() => d2.stop());
  // Idle, the broker still dead, Lines safe in the spool: spooling, not down.
  await waitFor('the spool opened', async () => (await stats(d2)).kafka_spool?.ready === 1, 10_000);
  await sleep(1500);
  const idle = await health(d2);
  t.equal(idle.body.backends.kafka?.state, 'spooling', `idle with Lines in the spool: ${idle.body.backends.kafka?.reason}`);
  await kafka.restart();
  await waitFor('the spool empty', () => spoolEmpty(d2), 60_000).catch(() => {});
  t.equal(await d2.stop(), 0);
  const run2 = drainedCounters(d2.logs, 'kafka');
  const c = await check(topic, first.ok, { stopped: true });
  t.same(c.missing, [], `every one of ${first.ok.length} answered Lines in the topic`);
  t.equal(run1.persisted + run2.persisted, first.ok.length, `persisted over both runs (${run1.persisted} + ${run2.persisted}) = the Lines answered, each once`);
  // A broker killed between writing and acknowledging has Lines it never
  // acknowledged: normal Lines (written to the spool's tail) and spooled
  // records (left in the spool). The restart reads the topic back first and
  // sends only those it does not hold (kafka-in-doubt.test.ts has the
  // deterministic case).
  const held = (d.logs.find((l) => l.msg === 'kafka: Lines librdkafka still held at shutdown written to the spool') as { lines?: number } | undefined)?.lines ?? 0;
  const unreported = (d.logs.find((l) => l.msg === 'kafka: spooled records without a delivery report at shutdown stay in the spool; the next start sends those the topic lacks') as { records?: number } | undefined)?.records ?? 0;
  const readBack = d2.logs.find((l) => l.msg === 'kafka: Lines in doubt read back; those found in the topic are not sent again') as { inDoubt?: number; found?: number } | undefined;
  t.equal(readBack?.inDoubt ?? 0, held + unreported, `read back: the ${held} Lines and ${unreported} spooled records without a report (${readBack?.found ?? 0} found)`);
  t.equal(c.duplicated, 0, 'none twice');
  t.equal(c.total, first.ok.length, 'the topic holds each answered Line once');
  t.equal(run2.dropped, 0);
});

t.test('SIGTERM mid-drain with a healthy broker: the records in flight are reported before exit, none sent twice', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 1);
  const dir = spoolDir();
  const d = await startSpoolDaemon(kafka.bootstrap, dir, { topics: { gr: topic } });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.kill();
  const tr = traffic(d, 'gr.test', 8, 1);
  await sleep(8000);
  const { ok, bad } = await tr.stop();
  t.same(bad, []);
  await kafka.restart();
  await waitFor('the drain under way', async () => ((await stats(d)).kafka_spool?.drained_total ?? 0) > 0, 60_000);
  t.equal(await d.stop(), 0);
  const closed = d.logs.find((l) => l.msg === 'kafka backend closed') as { spool?: { records: number } } | undefined;
  const left = closed?.spool?.records ?? -1;
  t.comment(`${left} records left in the spool at exit`);
  const d2 = await startSpoolDaemon(kafka.bootstrap, dir, { topics: { gr: topic } });
  t.teardown(() => d2.stop());
  await waitFor('the spool empty', () => spoolEmpty(d2), 60_000).catch(() => {});
  t.equal(await d2.stop(), 0);
  const c = await check(topic, ok, { stopped: true });
  t.same(c.missing, [], `every one of ${ok.length} answered Lines in the topic`);
  t.equal(c.duplicated, 0, 'none twice');
  t.equal(drainedCounters(d.logs, 'kafka').persisted + drainedCounters(d2.logs, 'kafka').persisted, c.total, 'persisted = what the topic holds');
});
