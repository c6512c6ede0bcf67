/**
 * Serving threads under load (issue 24), with the file and Kafka backends:
 * 64 connections spread over 4 threads, each connection numbering its own
 * requests. Every answered Line is once in the day file and once in the
 * topic (one partition, so its order is the order produced), each
 * connection's Lines in the order it sent them, a Line answered before
 * another was sent (on any connection) before it, and the counters summed
 * over the threads equal what the client counted.
 */
import t from 'tap';
import { connect } from '../helpers/conn.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { stats, startKafkaDaemon, topicNamer, topicNow, waitFor } from '../helpers/kafka-daemon.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

const CONNECTIONS = 64;
const PER_CONNECTION = 300;

/** Per connection, the n of its Lines in the order they appear; and any line seen twice. */
function byConnection(lines: readonly string[]): { order: Map<number, number[]>; twice: string[] } {
  const order = new Map<number, number[]>();
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const l of lines) {
    const { c, n } = JSON.parse(l) as { c: string; n: string };
    if (seen.has(`${c}/${n}`)) twice.push(`${c}/${n}`);
    seen.add(`${c}/${n}`);
    const list = order.get(Number(c)) ?? [];
    list.push(Number(n));
    order.set(Number(c), list);
  }
  return { order, twice };
}

/**
 * Lines answered before another was even sent that come after it (across
 * connections and threads): going down the Lines, one answered before the
 * latest sending time seen above it.
 */
function answeredBeforeSentButAfter(lines: readonly string[], times: Map<string, [number, number]>): string[] {
  const bad: string[] = [];
  let latestSent = -Infinity;
  let latestId = '';
  for (const l of lines) {
    const { c, n } = JSON.parse(l) as { c: string; n: string };
    const [sent, answered] = times.get(`${c}/${n}`) ?? [NaN, NaN];
    if (answered < latestSent) bad.push(`${c}/${n} answered ${(latestSent - answered).toFixed(1)} ms before ${latestId} was sent, but after it`);
    if (sent > latestSent) {
      latestSent = sent;
      latestId = `${c}/${n}`;
    }
  }
  return bad.slice(0, 5);
}

/** The connections whose Lines are not exactly 0..PER_CONNECTION-1 in order (at most a few, for the message). */
function outOfOrder(order: Map<number, number[]>): string[] {
  const bad: string[] = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    const ns = order.get(c) ?? [];
    const at = ns.findIndex((n, i) => n !== i);
    if (ns.length !== PER_CONNECTION || at >= 0) bad.push(`c=${c}: ${ns.length} Lines, first wrong at ${at}: ${ns.slice(Math.max(0, at - 2), at + 3).join(',')}`);
  }
  return bad.slice(0, 5);
}

t.test('threads: 4, 64 connections: every Line once in the file and the topic, each connection in order, counters summed', async (t) => {
  const topic = topicNamer('threads')();
  await kafka.createTopic(topic, 1);
  const d = await startKafkaDaemon(kafka.bootstrap, { topics: { gr: topic }, config: { threads: 4 } });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');

  // Half the connections wait for each answer, half write 4 requests at once
  // (pipelined): then Lines of one connection share a relay batch too.
  const statuses = new Map<number, number>();
  /** `${c}/${n}` → when it was written and when its answer was read (this process's clock). */
  const times = new Map<string, [sent: number, answered: number]>();
  let reconnected = 0;
  await Promise.all(Array.from({ length: CONNECTIONS }, async (_, c) => {
    const conn = await connect(d.port);
    const depth = c % 2 === 0 ? 1 : 4;
    for (let n = 0; n < PER_CONNECTION; n += depth) {
      const batch = Array.from({ length: Math.min(depth, PER_CONNECTION - n) }, (_, i) => ({ path: `/track?c=${c}&n=${n + i}`, headers: { host: 'gr.test' } }));
      const sent = performance.now();
      for (const a of await conn.send(batch)) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      const answered = performance.now();
      for (let i = 0; i < batch.length; i++) times.set(`${c}/${n + i}`, [sent, answered]);
    }
    if (!conn.open) reconnected++;
    conn.close();
  }));
  const lines = CONNECTIONS * PER_CONNECTION;
  t.same([...statuses], [[200, lines]], `all ${lines} answered 200`);
  t.equal(reconnected, 0, 'every connection kept to the end');

  const s = await stats(d);
  t.equal(s.requests?.GET?.['200'], lines, '/stats requests.GET.200 = the answers counted by the client (summed over the threads)');
  t.equal(s.threads?.length, 4, '/stats threads: one entry per serving thread');
  const metrics = (await request(d.statsPort, '/metrics')).body.toString();
  t.match(metrics, new RegExp(`^scratchd_requests_total\\{method="GET",status="200"\\} ${lines}$`, 'm'), '/metrics: the same sum');
  t.equal(metrics.match(/^scratchd_relay_bytes\{thread="\d+"\} /gm)?.length, 4, '/metrics: relay bytes of each thread');
  for (const th of s.threads ?? []) {
    t.ok(th.utilization >= 0 && th.utilization <= 1 && Number.isInteger(th.relay_bytes) && th.relay_bytes >= 0,
      `a thread's view: ${JSON.stringify(th)}`);
  }
  await waitFor('every Line persisted by both backends', async () => {
    const b = (await stats(d)).backends;
    return b?.file?.persisted === lines && b?.kafka?.persisted === lines;
  }).catch(() => {});
  const b = (await stats(d)).backends;
  t.equal(b?.file?.persisted, lines, 'backends.file.persisted = the Lines');
  t.equal(b?.kafka?.persisted, lines, 'backends.kafka.persisted = the Lines');
  // Utilization is measured over a window of seconds: the load falls in the one after it.
  await waitFor('a thread shows the load in its utilization', async () =>
    ((await stats(d)).threads ?? []).some((th: { utilization: number }) => th.utilization > 0), 15_000).catch(() => {});
  const busy = ((await stats(d)).threads ?? []).map((th: { utilization: number }) => th.utilization);
  t.ok(busy.some((u: number) => u > 0), `the serving threads' utilization shows the load: ${busy.join(', ')}`);
  t.equal(await d.stop(), 0, 'exit 0');

  const file = byConnection(d.fileLines('gr'));
  t.equal(d.fileLines('gr').length, lines, 'the day file holds every Line');
  t.same(file.twice.slice(0, 5), [], 'none twice in the file');
  t.same(outOfOrder(file.order), [], 'the file: each connection\'s Lines all there, in the order sent');
  t.same(answeredBeforeSentButAfter(d.fileLines('gr'), times), [], 'the file: a Line answered before another was sent comes first');

  const got = await topicNow(kafka.bootstrap, topic);
  const inTopic = byConnection(got.map((m) => m.value.toString('utf8')));
  t.equal(got.length, lines, 'the topic holds every Line');
  t.same(inTopic.twice.slice(0, 5), [], 'none twice in the topic');
  t.same(outOfOrder(inTopic.order), [], 'the topic: each connection\'s Lines all there, in the order sent');
  t.same(answeredBeforeSentButAfter(got.map((m) => m.value.toString('utf8')), times), [], 'the topic: a Line answered before another was sent comes first');
});
