/**
 * Kafka loses Lines (its broker down, tiny queues): the loss window is
 * logged and recorded in losses.jsonl, and `scratchd replay` of it puts every
 * answered Line in the topic. A replay interrupted and resumed produces each
 * Line once. The broker is killed here, so this test starts its own.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { dayOf, dayStart } from '../../src/day.js';
import { encodeEntries } from '../../src/file/day-index.js';
import { readLossWindows, type LossWindow } from '../../src/losses.js';
import { consume } from '../helpers/consume.js';
import { tempDir } from '../helpers/daemon.js';
import { drainedCounters } from '../helpers/files.js';
import { startKafka } from '../helpers/kafka.js';
import { request } from '../helpers/http.js';
import { idCounts, startKafkaDaemon, topicNow, traffic } from '../helpers/kafka-daemon.js';
import { runId } from '../helpers/lines.js';
import { cli, startCli } from '../helpers/recovery.js';
import { readIndex } from '../../src/file/day-index.js';
import { sleep, until } from '../helpers/wait.js';

const kafka = await startKafka({ owned: true });
t.teardown(() => kafka.stop());

t.test('broker down, Lines lost: the window is in losses.jsonl, and replaying it puts every answered Line in Kafka', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, {
    enrich: { time: 't' },
    kafka: { queueCapacity: 8, rdkafka: { 'queue.buffering.max.messages': 8 } },
  });
  t.teardown(() => d.stop());
  const tr = traffic(d, 'gr.test', 2, 20);
  await until('tr.answered >= 40', () => tr.answered >= 40, 30_000);
  await kafka.kill();
  const atKill = tr.answered;
  await until('tr.answered >= atKill + 100', () => tr.answered >= atKill + 100, 30_000); // the queues hold 16: the rest is lost
  const port = d.statsPort;
  const stats = JSON.parse((await request(port, '/stats')).body.toString()) as { loss_windows: { open: LossWindow[] } };
  t.match(stats.loss_windows.open, [{ backend: 'kafka', flavor: 'gr', reasons: { queue_full: Number } }], '/stats shows the open window');
  t.match((await request(port, '/metrics')).body.toString(), /^scratchd_loss_windows_total\{backend="kafka",flavor="gr"\} 1$/m,
    'Prometheus counts it');
  await kafka.restart();
  await sleep(2000);
  const { ok, bad } = await tr.stop();
  t.same(bad, [], 'every request answered 200');
  const stoppedAt = Date.now();
  t.equal(await d.stop(), 0, 'drained');
  const dropped = drainedCounters(d.logs, 'kafka').dropped!;
  t.ok(dropped > 0, `kafka dropped ${dropped} Lines`);

  const windows = readLossWindows(join(d.dir, 'state')).filter((w) => w.backend === 'kafka' && w.flavor === 'gr');
  t.ok(windows.length >= 1, `${windows.length} loss window(s) recorded`);
  t.equal(windows.reduce((n, w) => n + w.count, 0), dropped, 'the windows count every dropped Line');
  t.ok(Date.parse(windows.at(-1)!.closedAt!) >= stoppedAt, 'the window still open at shutdown was closed and recorded before exit');
  for (const w of windows) {
    const logged = d.logs.filter((l) => (l.lossWindow as { id?: string } | undefined)?.id === w.id);
    t.equal(logged.length, 1, `window ${w.id} logged once`);
    t.match(String(logged[0]?.msg), /^loss window closed: kafka lost \d+ Lines of gr .*recover with: scratchd replay --config /);
  }

  const before = idCounts((await consume(kafka.bootstrap, d.topics.gr!, { timeoutMs: 60_000 })).map((m) => m.value));
  const lost = ok.filter((id) => !before.has(id));
  t.ok(lost.length > 0, `${lost.length} answered Lines are not in Kafka before the replay`);

  // The day file's own index, written by the file backend with each batch.
  const day = dayOf(Date.now(), 'Europe/Athens');
  const file = join(d.dir, 'log', 'gr', `gr-${day}.log`);
  const entries = (await readIndex(`${file}.idx`)) ?? [];
  t.ok(entries.length > 0, `the file backend wrote ${entries.length} index entries`);
  for (const w of windows) {
    const r = await cli(['replay', '--config', join(d.dir, 'config.json'), '--window', w.id]);
    t.equal(r.code, 0, `replay --window ${w.id}: ${r.stderr}`);
    t.match(r.stdout, /: \d+ Lines produced, \d+ delivered, 0 failed\n$/);
  }

  const after = await consume(kafka.bootstrap, d.topics.gr!, { timeoutMs: 60_000 });
  const counts = idCounts(after.map((m) => m.value));
  t.same(ok.filter((id) => !counts.has(id)), [], `every one of ${ok.length} answered Lines is in Kafka now`);
  const timeOf = (v: Buffer): number => Date.parse((JSON.parse(v.toString()) as { t: string }).t);
  // Produced live: the Line's arrival time; replayed: its write batch's index time, which is
  // when the batch's first Line arrived, raised to the latest arrival written before it. With
  // serving threads a Line can reach the file a few milliseconds behind Lines that arrived after
  // it (docs/architecture.md), so its batch's time may be that much later than its own.
  const batchStarts = new Set(entries.map((e) => e.time));
  const off = after.filter((m) => m.timestamp !== timeOf(m.value) && !(batchStarts.has(m.timestamp) && Math.abs(m.timestamp - timeOf(m.value)) < 1000));
  t.same(off.map((m) => [m.timestamp, timeOf(m.value)]), [],
    'every message has its Line\'s arrival time, or (replayed) its batch\'s index time, as timestamp');
  t.same(after.filter((m) => m.headers.flavor !== 'gr').length, 0, 'every message has the header flavor=gr');
  // Extra Lines: only within a window's range, or the one write batch before it.
  const timeById = new Map(after.map((m) => [(JSON.parse(m.value.toString()) as { id: string }).id, timeOf(m.value)]));
  const dupTimes = [...counts].filter(([, n]) => n > 1).map(([id]) => timeById.get(id)!);
  for (const w of windows) {
    const from = Date.parse(w.from);
    const batchStart = Math.max(...entries.filter((e) => e.time < from).map((e) => e.time));
    const early = dupTimes.filter((x) => x < from && x < batchStart);
    t.same(early, [], `window ${w.id}: extra Lines before it only from the one batch that straddles its start`);
  }
  const inSomeWindow = (x: number): boolean => windows.some((w) => {
    const from = Date.parse(w.from);
    const prev = Math.max(...entries.filter((e) => e.time < from).map((e) => e.time));
    // The batch that holds `to` comes whole: up to the next batch's start.
    const next = entries.find((e) => e.time > Date.parse(w.to))?.time ?? Infinity;
    return x >= prev && x < next;
  });
  t.same(dupTimes.filter((x) => !inSomeWindow(x)), [], `the ${dupTimes.length} Lines produced twice are all within a window or its leading batch`);
});

t.test('an interrupted replay resumes without producing a Line twice; plain and .gz day files', async (t) => {
  const dir = tempDir();
  const topic = `recovery.resume.${runId}`;
  await kafka.createTopic(topic, 2, { 'retention.ms': '-1' });
  // 300 batches of 5 Lines, one a second, across midnight in Athens: the
  // first day's file plain, the second's compressed.
  const midnight = dayStart('2026-11-30', 'Europe/Athens');
  const T0 = midnight - 150_000;
  const days: Record<string, { data: Buffer[]; entries: { time: number; offset: number }[]; size: number }> = {};
  for (let b = 0; b < 300; b++) {
    const time = T0 + b * 1000;
    const day = dayOf(time, 'Europe/Athens');
    const f = (days[day] ??= { data: [], entries: [], size: 0 });
    f.entries.push({ time, offset: f.size });
    for (let i = 0; i < 5; i++) {
      const line = Buffer.from(`${JSON.stringify({ id: `${b}.${i}`, b })}\n`);
      f.data.push(line);
      f.size += line.length;
    }
  }
  mkdirSync(join(dir, 'log', 'gr'), { recursive: true });
  t.same(Object.keys(days), ['2026-11-29', '2026-11-30']);
  writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-29.log'), Buffer.concat(days['2026-11-29']!.data));
  writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-30.log.gz'), gzipSync(Buffer.concat(days['2026-11-30']!.data)));
  for (const [day, f] of Object.entries(days)) writeFileSync(join(dir, 'log', 'gr', `gr-${day}.log.idx`), encodeEntries(f.entries));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', topic }],
    stateDir: join(dir, 'state'),
    backends: { file: { dir: join(dir, 'log') }, kafka: { enabled: true, rdkafka: { 'metadata.broker.list': kafka.bootstrap } } },
  }));
  // Batches 140 to 170 are in [from, to]; the range begins exactly at batch
  // 140's first Line, so batch 139 comes along (the one extra batch).
  const from = new Date(T0 + 140_000).toISOString();
  const to = new Date(T0 + 170_500).toISOString();
  const range = ['--config', config, '--flavor', 'gr', '--from', from, '--to', to];
  const expected = Array.from({ length: 32 * 5 }, (_, k) => `${139 + Math.floor(k / 5)}.${k % 5}`);

  const dry = await cli(['replay', ...range, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /\(dry run\): 160 Lines .* from 2 day file\(s\)/);

  const first = startCli(['replay', ...range, '--rate', '30']);
  const progress = join(dir, 'state', `replay-gr-${Date.parse(from)}-${Date.parse(to)}.json`);
  await until('existsSync(progress) && (JSON.parse(readFileSync(progress, \'utf8\'...', () => existsSync(progress) && (JSON.parse(readFileSync(progress, 'utf8')) as { delivered: number }).delivered >= 40, 30_000);
  first.proc.kill('SIGTERM');
  const stopped = await first.done;
  t.equal(stopped.code, 130, 'interrupted');
  t.match(stopped.stdout, /interrupted/);
  t.match(stopped.stderr, /--resume\n$/, 'says how to continue');

  const again = await cli(['replay', ...range]);
  t.equal(again.code, 1, 'a plain rerun of an interrupted range is refused');
  t.match(again.stderr, /add --resume to continue it/);

  const resumed = await cli(['replay', ...range, '--resume']);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stdout, / 0 failed\n$/);
  const twice = await cli(['replay', ...range, '--resume']);
  t.match(twice.stdout, /already complete/);

  const got = await topicNow(kafka.bootstrap, topic);
  const counts = idCounts(got.map((m) => m.value));
  t.same([...counts.keys()].sort(), [...expected].sort(), 'exactly the Lines of the range and its leading batch');
  t.same([...counts.values()].filter((n) => n > 1), [], 'none twice');
  const batchOf = (m: { value: Buffer }): number => (JSON.parse(m.value.toString()) as { b: number }).b;
  t.same(got.filter((m) => m.timestamp !== T0 + batchOf(m) * 1000).length, 0, 'each message has its batch\'s arrival time');
  t.same(got.filter((m) => m.headers.flavor !== 'gr').length, 0, 'each has the flavor header');
  for (const p of [0, 1]) {
    const order = got.filter((m) => m.partition === p).map(batchOf);
    t.same(order, [...order].sort((a, b) => a - b), `partition ${p} holds them in file order`);
  }
});

t.test('reports that come after a second Ctrl-C, while the producer flushes, are saved: a resume repeats none', async (t) => {
  const dir = tempDir();
  const topic = `recovery.flush.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  const T = Date.parse('2026-11-29T10:00:00Z');
  mkdirSync(join(dir, 'log', 'gr'), { recursive: true });
  const lines = Array.from({ length: 400 }, (_, i) => `${JSON.stringify({ id: String(i) })}\n`);
  writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-29.log'), lines.join(''));
  writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-29.log.idx'),
    encodeEntries(lines.map((_, i) => ({ time: T + i, offset: lines.slice(0, i).join('').length }))));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', topic }],
    stateDir: join(dir, 'state'),
    backends: { file: { dir: join(dir, 'log') }, kafka: { rdkafka: { 'metadata.broker.list': kafka.bootstrap } } },
  }));
  const range = ['--config', config, '--flavor', 'gr', '--from', new Date(T).toISOString(), '--to', new Date(T + 399).toISOString()];
  const progress = join(dir, 'state', `replay-gr-${T}-${T + 399}.json`);
  const delivered = (): number => (existsSync(progress) ? (JSON.parse(readFileSync(progress, 'utf8')) as { delivered: number }).delivered : 0);

  const first = startCli(['replay', ...range, '--rate', '100']);
  await until('delivered() >= 20', () => delivered() >= 20, 30_000);
  await kafka.pause(); // what is produced from now on waits in flight
  await sleep(1000);
  first.proc.kill('SIGINT');
  await sleep(300);
  first.proc.kill('SIGINT'); // stop waiting: the producer flushes on disconnect
  await sleep(300);
  await kafka.resume(); // ... and its reports come now
  const stopped = await first.done;
  t.equal(stopped.code, 130, 'interrupted');
  const resumed = await cli(['replay', ...range, '--resume']);
  t.equal(resumed.code, 0, resumed.stderr);
  const got = idCounts((await topicNow(kafka.bootstrap, topic)).map((m) => m.value));
  t.equal(got.size, 400, 'every Line');
  t.same([...got].filter(([, n]) => n > 1).map(([id]) => id), [], 'none twice');
});
