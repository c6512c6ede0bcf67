/**
 * Recovery when its inputs are not what it assumed (#31): an index whose
 * times a slow POST would step back, a Line the topic can never take, a
 * day's Lines put back into the topic after the next day's, transaction
 * markers at a partition's end, an empty index, an index of another file.
 * One broker for all of them.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import t from 'tap';
import { decodeEntries, encodeEntries } from '../../src/file/day-index.js';
import { consume } from '../helpers/consume.js';
import { startDaemon, tempDir } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { idCounts, topicNow } from '../helpers/kafka-daemon.js';
import { runId } from '../helpers/lines.js';
import { cli } from '../helpers/recovery.js';
import { sleep } from '../helpers/wait.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

/** A config for the recovery commands: flavor gr (UTC unless told) on `topic`, its day files in `dir`/log. */
function recoveryConfig(dir: string, topic: string, timeZone = 'UTC'): string {
  const file = join(dir, 'recovery.json');
  writeFileSync(file, JSON.stringify({
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone, topic }],
    stateDir: join(dir, 'state'),
    backends: { file: { dir: join(dir, 'log') }, kafka: { rdkafka: { 'metadata.broker.list': kafka.bootstrap } } },
  }));
  return file;
}

/** A day file of gr with its index; `lines` as they are, `batch` Lines per index entry, the first at `time`, 1 ms apart. */
function dayFile(dir: string, day: string, lines: string[], batch: number, time: number): string {
  mkdirSync(join(dir, 'log', 'gr'), { recursive: true });
  const file = join(dir, 'log', 'gr', `gr-${day}.log`);
  const entries = [];
  let offset = 0;
  for (let i = 0; i < lines.length; i++) {
    if (i % batch === 0) entries.push({ time: time + i / batch, offset });
    offset += Buffer.byteLength(lines[i]!) + 1;
  }
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
  writeFileSync(`${file}.idx`, encodeEntries(entries));
  return file;
}

const ids = (n: number, prefix = ''): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const idOf = (v: Buffer): string => (JSON.parse(v.toString()) as { id: string }).id;

t.test('a POST whose body came late steps no index time back: a replay of a second holds every GET of it, and the POST', async (t) => {
  const d = await startDaemon({ config: { flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'UTC', enrich: { time: 't' } }] } });
  t.teardown(() => d.stop());
  let n = 0;
  let sending = true;
  let paused = false;
  const gets = (async () => {
    while (sending) {
      while (paused) await sleep(1);
      await request(d.port, `/track?id=g${n++}`, { host: 'gr.test' });
      await sleep(2);
    }
  })();
  await sleep(500);
  // The POST's headers now, its body 400 ms later.
  const sock = net.connect(d.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write('POST /track?id=post HTTP/1.1\r\nHost: gr.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\n');
  await sleep(400);
  // The body alone, so that its Line is written in a batch of its own.
  paused = true;
  await sleep(50);
  sock.write('x=123');
  const answer = await new Promise<string>((r) => sock.once('data', (c) => r(c.toString())));
  sock.destroy();
  await sleep(50);
  paused = false;
  t.match(answer, /^HTTP\/1\.1 204/, 'the POST answered');
  await sleep(1500);
  sending = false;
  await gets;
  t.equal(await d.stop(), 0, 'drained');

  const day = new Date().toISOString().slice(0, 10);
  const lines = readFileSync(join(d.dir, 'log', 'gr', `gr-${day}.log`), 'utf8').split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id: string; t: string });
  const post = lines.find((l) => l.id === 'post')!;
  const tP = Date.parse(post.t);
  t.ok(lines.indexOf(post) > lines.findIndex((l) => Date.parse(l.t) > tP + 300), 'the POST was written after GETs that came 300 ms after its headers');

  const idx = decodeEntries(readFileSync(join(d.dir, 'log', 'gr', `gr-${day}.log.idx`)));
  t.same(idx.filter((e, i) => i > 0 && e.time < idx[i - 1]!.time), [], 'the index never steps back in time');

  const topic = `recovery.faults.post.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  const config = recoveryConfig(d.dir, topic);
  // A second that begins after the POST's headers and holds its body's arrival.
  const from = tP + 100;
  const to = tP + 1100;
  const r = await cli(['replay', '--config', config, '--flavor', 'gr', '--from', String(from), '--to', String(to)]);
  t.equal(r.code, 0, r.stderr);
  const got = idCounts((await consume(kafka.bootstrap, topic, { timeoutMs: 30_000 })).map((m) => m.value));
  const inRange = lines.filter((l) => l.id !== 'post' && Date.parse(l.t) >= from && Date.parse(l.t) <= to).map((l) => l.id);
  // A GET every 2 ms, fewer on a loaded machine: enough to prove the range whole.
  t.ok(inRange.length >= 10, `${inRange.length} GETs arrived in that second`);
  t.same(inRange.filter((id) => !got.has(id)), [], 'every one of them replayed');
  t.ok(got.has('post'), 'and the POST, written within it');
});

t.test('a Line the topic can never take is reported once, skipped, and a resume produces nothing twice', async (t) => {
  const dir = tempDir();
  const topic = `recovery.faults.large.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1', 'max.message.bytes': '2000' });
  // 200 Lines; #100 has 6000 random characters: too large for the topic even compressed.
  const lines = ids(200).map((id, i) => JSON.stringify(i === 100 ? { id, pad: randomBytes(4500).toString('base64') } : { id }));
  const T = Date.parse('2026-11-20T10:00:00Z');
  dayFile(dir, '2026-11-20', lines, 10, T);
  const config = recoveryConfig(dir, topic);
  const range = ['--config', config, '--flavor', 'gr', '--from', '2026-11-20T09:00:00Z', '--to', '2026-11-20T11:00:00Z'];

  const first = await cli(['replay', ...range]);
  t.equal(first.code, 1, 'exit 1: not everything was delivered');
  t.match(first.stdout, /: \d+ Lines produced, 199 delivered, 1 failed \(1 never deliverable, skipped\)\n$/);
  const reports = first.stderr.split('\n').filter((l) => /can never be delivered/.test(l));
  t.equal(reports.length, 1, 'reported once');
  t.match(reports[0], /^scratchd replay: 2026-11-20 bytes \d+-\d+ \(a Line of 6\d{3} bytes\) can never be delivered: .*too large/i, 'with its reason');
  const progress = JSON.parse(readFileSync(join(dir, 'state', `replay-gr-${Date.parse('2026-11-20T09:00:00Z')}-${Date.parse('2026-11-20T11:00:00Z')}.json`), 'utf8')) as
    { delivered: number; complete: boolean; undeliverable: unknown[]; retry: unknown[] };
  t.match(progress, { delivered: 199, complete: true, retry: [] }, 'progress: complete, 199 delivered');
  t.equal(progress.undeliverable.length, 1, 'the Line listed as never deliverable');

  for (let i = 0; i < 2; i++) {
    const again = await cli(['replay', ...range, '--resume']);
    t.equal(again.code, 0, again.stderr);
    t.match(again.stdout, /already complete \(199 Lines delivered, 1 never deliverable: listed in .*\); nothing to do\n$/);
  }
  const got = idCounts((await topicNow(kafka.bootstrap, topic)).map((m) => m.value));
  t.equal(got.size, 199, 'every other Line is in the topic');
  t.notOk(got.has('100'), 'not the large one');
  t.same([...got].filter(([, c]) => c > 1), [], 'none twice');
});

/** Produce messages with the given timestamps, in order, to partition 0; in one transaction when asked. */
async function produceAt(topic: string, msgs: { id: string; time: number }[], transactional = false): Promise<void> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': kafka.bootstrap, dr_cb: true, 'enable.idempotence': true,
    ...(transactional ? { 'transactional.id': `recovery-faults-${runId}` } : {}),
  });
  await new Promise<void>((res, rej) => producer.connect({}, (err) => (err ? rej(err) : res())));
  producer.setPollInterval(20);
  const call = (f: (cb: (err: unknown) => void) => void): Promise<void> => new Promise((res, rej) => f((err) => (err ? rej(err) : res())));
  if (transactional) {
    await call((cb) => producer.initTransactions(30_000, cb));
    await call((cb) => producer.beginTransaction(cb));
  }
  let reports = 0;
  const failed: string[] = [];
  producer.on('delivery-report', (err) => {
    reports++;
    if (err) failed.push(err.message);
  });
  for (const m of msgs) producer.produce(topic, 0, Buffer.from(JSON.stringify({ id: m.id })), null, m.time, undefined, [{ flavor: 'gr' }]);
  if (transactional) await call((cb) => producer.commitTransaction(30_000, cb));
  while (reports < msgs.length) await new Promise<void>((r) => producer.flush(1000, () => r()));
  if (failed.length > 0) throw new Error(`produce to ${topic}: ${failed[0]}`);
  await new Promise<void>((r) => producer.disconnect(() => r()));
}

t.test('rebuild reads to the end of the topic: a day\'s Lines put back after the next day\'s are in it', async (t) => {
  const dir = tempDir();
  const topic = `recovery.faults.late.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  const D = Date.parse('2026-11-20T00:00:00Z');
  await produceAt(topic, [
    ...ids(5, 'a').map((id, i) => ({ id, time: D + 3_600_000 + i })),
    ...ids(5, 'next').map((id, i) => ({ id, time: D + 86_400_000 + 7_200_000 + i })),
    // A replay of a loss window of the 20th, run on the 21st.
    ...ids(5, 'b').map((id, i) => ({ id, time: D + 5_400_000 + i })),
  ]);
  const r = await cli(['rebuild', '--config', recoveryConfig(dir, topic), '--flavor', 'gr', '--day', '2026-11-20', '--out', join(dir, 'out')]);
  t.equal(r.code, 0, r.stderr);
  const rebuilt = readFileSync(join(dir, 'out', 'gr', 'gr-2026-11-20.log'), 'utf8').split('\n').filter((l) => l !== '').map((l) => idOf(Buffer.from(l)));
  t.same(rebuilt, [...ids(5, 'a'), ...ids(5, 'b')], 'all 10 Lines of the day, by arrival time');
});

t.test('rebuild ends at a partition whose last offset before its end is a transaction marker', async (t) => {
  const dir = tempDir();
  const topic = `recovery.faults.txn.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  // A flavor whose day ends at the next whole hour: a transaction's commit
  // marker gets the broker's time (now, before that end), and the next
  // day's first Line, a minute after it (the broker takes timestamps up to
  // an hour ahead), is where the old rebuild stopped: right after the marker.
  // So `end` is at least 2 minutes away, and the next day's Line (61 s past
  // `end`) less than an hour ahead: run between 1.5 and 58 minutes into an hour.
  const intoHour = Date.now() % 3_600_000;
  if (intoHour < 90_000) await sleep(90_000 - intoHour);
  else if (intoHour > 3_480_000) await sleep(3_600_000 - intoHour + 90_000);
  const end = Math.ceil(Date.now() / 3_600_000) * 3_600_000;
  const offset = -((new Date(end).getUTCHours()) % 24); // hours: local midnight at `end`
  const hours = offset < -12 ? offset + 24 : offset;
  const zone = hours === 0 ? 'Etc/GMT' : `Etc/GMT${hours < 0 ? '+' : '-'}${Math.abs(hours)}`;
  const day = new Date(end - 1 + hours * 3_600_000).toISOString().slice(0, 10);
  await produceAt(topic, ids(3, 't').map((id, i) => ({ id, time: end - 3_600_000 * 20 + i })), true);
  await produceAt(topic, [{ id: 'next', time: end + 61_000 }]);
  // The rebuild runs just after the day's end.
  const args = ['rebuild', '--config', recoveryConfig(dir, topic, zone), '--flavor', 'gr', '--day', day, '--out', join(dir, 'out')];
  const r = await cli(args, 60_000, end + 30_000);
  t.equal(r.code, 0, `ends: ${r.stderr}`);
  t.match(r.stdout, /3 Lines written to /);
});

t.test('an empty index: the whole file, each Line stamped with the first instant of its day', async (t) => {
  const dir = tempDir();
  const topic = `recovery.faults.noidx.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  const file = dayFile(dir, '2026-11-21', ids(20).map((id) => JSON.stringify({ id })), 5, Date.parse('2026-11-21T10:00:00Z'));
  writeFileSync(`${file}.idx`, ''); // a failed index write (ENOSPC) left it empty
  const at = '2026-11-21T10:00:00.002Z';
  const r = await cli(['replay', '--config', recoveryConfig(dir, topic), '--flavor', 'gr', '--from', at, '--to', at]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /gr-2026-11-21\.log\.idx is empty or missing: all of .* is taken, its Lines stamped with the first instant of 2026-11-21\n$/);
  const got = await consume(kafka.bootstrap, topic, { count: 20, timeoutMs: 30_000 });
  t.same(got.map((m) => idOf(m.value)), ids(20), 'all 20 Lines, in order');
  t.same(got.filter((m) => m.timestamp !== Date.parse('2026-11-21T00:00:00Z')).length, 0, 'each with the day\'s first instant as timestamp, not the replay\'s');
});

t.test('an index of another file (a .log moved in beside an older .idx) is refused before anything is produced', async (t) => {
  const dir = tempDir();
  const topic = `recovery.faults.stale.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  const T = Date.parse('2026-11-22T10:00:00Z');
  // The old file: Lines of 20 bytes, an entry every 10 Lines (bytes 0, 200, 400, ...).
  const file = dayFile(dir, '2026-11-22', ids(50).map((id) => JSON.stringify({ id: id.padStart(11, '0') })), 10, T);
  const oldIdx = readFileSync(`${file}.idx`);
  // The new file moved in: longer Lines, the old index left beside it.
  dayFile(dir, '2026-11-22', ids(50).map((id) => JSON.stringify({ id: id.padStart(24, '0') })), 10, T);
  writeFileSync(`${file}.idx`, oldIdx);
  const r = await cli(['replay', '--config', recoveryConfig(dir, topic), '--flavor', 'gr', '--from', String(T + 2), '--to', String(T + 3)]);
  t.equal(r.code, 1);
  t.equal(r.stderr.split('\n').length, 2, 'one line');
  t.match(r.stderr, /^scratchd replay: .*gr-2026-11-22\.log\.idx is not the index of .*gr-2026-11-22\.log \(byte \d+ does not begin a Line\)/);
  t.same(await consume(kafka.bootstrap, topic, { timeoutMs: 5000 }), [], 'nothing produced');
});
