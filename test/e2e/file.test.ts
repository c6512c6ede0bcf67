// The file backend end to end: what lands in which file, under load and faults.
import { chownSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines, drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const today = (tz: string) => dayOf(Date.now(), tz);
const nobody = { uid: 65534, gid: 65534 };

/** Send `n` GETs over `connections` keep-alive connections; resolves with the statuses. */
async function load(port: number, n: number, connections: number, path: (i: number) => [string, string]): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const statuses: number[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < n) {
      const i = next++;
      const [host, p] = path(i);
      statuses[i] = (await request(port, p, { host, agent })).status;
    }
  }));
  agent.destroy();
  return statuses;
}

t.test('three flavors, exact bytes, one file per flavor and day, 0640', async (t) => {
  const d = await startDaemon();
  const queries: [string, string, string][] = [
    ['gr.test', '/track?page=%CE%91%CE%B8%CE%AE%CE%BD%CE%B1&n=1', '{"page":"Αθήνα","n":"1"}'],
    ['tr.test', '/track?q=%C4%9F%C3%BC%C5%9F&x=a+b', '{"q":"ğüş","x":"a b"}'],
    ['uk.test', '/track?e=%F0%9F%98%80&quote=%22%5C%0A', '{"e":"😀","quote":"\\"\\\\\\n"}'],
    ['www.gr.test', '/track?n=2&n=3', '{"n":"3"}'],
    ['gr.test', '/track', '{}'],
    ['gr.test', '/track?flag', '{"flag":null}'],
  ];
  for (const [host, path] of queries) t.equal((await request(d.port, path, { host })).status, 200, path);
  t.equal(await d.stop(), 0);
  const log = join(d.dir, 'log');
  t.same(dayLines(log, 'gr', today('Europe/Athens')), [queries[0]![2], queries[3]![2], queries[4]![2], queries[5]![2]]);
  t.same(dayLines(log, 'tr', today('Europe/Istanbul')), [queries[1]![2]]);
  t.same(dayLines(log, 'uk', today('Europe/London')), [queries[2]![2]]);
  t.equal(statSync(join(log, 'gr', `gr-${today('Europe/Athens')}.log`)).mode & 0o777, 0o640);
});

t.test('a day boundary: each Line in the file of its own day, per time zone', async (t) => {
  // 2026-03-28T21:59:59Z: 23:59:59 in Athens, 00:59:59 next day in Istanbul, 21:59:59 in London.
  const before = Date.parse('2026-03-28T21:59:59.000Z');
  const d = await startDaemon({ clock: before });
  await d.setClock(before); // again: a slow start-up must not carry the clock past midnight
  for (const host of ['gr.test', 'tr.test', 'uk.test']) await request(d.port, '/track?when=before', { host });
  // Athens passes midnight (and on this night moves its clocks forward at 03:00).
  await d.setClock(Date.parse('2026-03-28T22:00:00.000Z'));
  for (const host of ['gr.test', 'tr.test', 'uk.test']) await request(d.port, '/track?when=after', { host });
  await d.setClock(Date.parse('2026-03-29T00:00:00.500Z'));
  await request(d.port, '/track?when=london', { host: 'uk.test' });
  t.equal(await d.stop(), 0);
  const log = join(d.dir, 'log');
  t.same(dayLines(log, 'gr', '2026-03-28'), ['{"when":"before"}']);
  t.same(dayLines(log, 'gr', '2026-03-29'), ['{"when":"after"}']);
  t.same(dayLines(log, 'tr', '2026-03-29'), ['{"when":"before"}', '{"when":"after"}']);
  t.same(dayLines(log, 'uk', '2026-03-28'), ['{"when":"before"}', '{"when":"after"}']);
  t.same(dayLines(log, 'uk', '2026-03-29'), ['{"when":"london"}']);
});

t.test('10 000 requests over 100 connections: each Line exactly once, whole', async (t) => {
  const d = await startDaemon();
  const hosts = ['gr.test', 'tr.test', 'uk.test'];
  const statuses = await load(d.port, 10_000, 100, (i) => [hosts[i % 3]!, `/track?n=${i}&pad=${'x'.repeat(i % 200)}`]);
  t.equal(statuses.filter((s) => s === 200).length, 10_000);
  t.equal(await d.stop(), 0);
  const log = join(d.dir, 'log');
  const seen = new Set<number>();
  let lines = 0;
  for (const [flavor, tz] of [['gr', 'Europe/Athens'], ['tr', 'Europe/Istanbul'], ['uk', 'Europe/London']]) {
    for (const line of dayLines(log, flavor!, today(tz!))) {
      const v = JSON.parse(line) as { n: string; pad: string };
      const n = Number(v.n);
      if (hosts[n % 3] !== `${flavor}.test` || v.pad !== 'x'.repeat(n % 200)) t.fail(`wrong line in ${flavor}: ${line}`);
      seen.add(n);
      lines++;
    }
  }
  t.equal(lines, 10_000, 'no line twice');
  t.equal(seen.size, 10_000, 'every line once');
  t.same(drainedCounters(d.logs, 'file'), { persisted: 10_000, failed: 0, dropped: 0, retried: 0 });
});

t.test('unwritable directory: HTTP stays 200, errors counted, writing resumes when fixed', async (t) => {
  const d = await startDaemon({ user: nobody, config: { backends: { file: { retryMs: 50 } } } });
  const log = join(d.dir, 'log');
  mkdirSync(log, { mode: 0o755 }); // root's: the daemon (nobody) cannot create gr/ in it
  for (let i = 0; i < 5; i++) t.equal((await request(d.port, `/track?n=${i}`, { host: 'gr.test' })).status, 200);
  await d.waitLog((l) => l.msg === 'write failed; retrying' && l.kind === 'EACCES');
  chownSync(log, nobody.uid, nobody.gid);
  await d.waitLog((l) => l.msg === 'writing again');
  t.equal((await request(d.port, '/track?n=5', { host: 'gr.test' })).status, 200);
  t.equal(await d.stop(), 0);
  t.same(dayLines(log, 'gr', today('Europe/Athens')), [0, 1, 2, 3, 4, 5].map((n) => `{"n":"${n}"}`));
  const c = drainedCounters(d.logs, 'file');
  t.equal(c.persisted, 6);
  t.equal(c.dropped, 0);
  t.ok(c.failed! >= 1 && c.failed === c.retried, `failed ${c.failed} = retried ${c.retried} ≥ 1`);
});

t.test('a full queue drops Lines for the file backend only, counted, HTTP stays 200', async (t) => {
  const d = await startDaemon({ user: nobody, config: { backends: { file: { retryMs: 50, queueCapacity: 10 } } } });
  const log = join(d.dir, 'log');
  mkdirSync(log, { mode: 0o755 });
  await request(d.port, '/track?n=first', { host: 'gr.test' });
  await d.waitLog((l) => l.msg === 'write failed; retrying');
  const statuses = await load(d.port, 50, 5, (i) => ['gr.test', `/track?n=${i}`]);
  t.same(new Set(statuses), new Set([200]));
  chownSync(log, nobody.uid, nobody.gid);
  await d.waitLog((l) => l.msg === 'writing again');
  t.equal(await d.stop(), 0);
  const lines = dayLines(log, 'gr', today('Europe/Athens'));
  const c = drainedCounters(d.logs, 'file');
  t.equal(lines[0], '{"n":"first"}');
  t.equal(c.persisted, lines.length);
  t.equal(c.persisted! + c.dropped!, 51, 'every Line either written or counted as dropped');
  // Three flavors: a flavor whose write fails holds at most 10 / 3 = 3 Lines (the first one included).
  t.equal(c.dropped, 51 - 3, 'the broken flavor held its share (3) while the first write was retried');
  t.equal(new Set(lines).size, lines.length, 'no duplicates');
});

t.test('a Line written after midnight still lands in the file of its own day', async (t) => {
  const d = await startDaemon({ user: nobody, clock: Date.parse('2026-06-30T20:59:58Z'), config: { backends: { file: { retryMs: 50 } } } });
  const log = join(d.dir, 'log');
  mkdirSync(log, { mode: 0o755 });
  await d.setClock(Date.parse('2026-06-30T20:59:58Z'));
  await request(d.port, '/track?day=30', { host: 'gr.test' }); // 23:59:58 in Athens
  await d.waitLog((l) => l.msg === 'write failed; retrying');
  await d.setClock(Date.parse('2026-06-30T21:00:05Z'));
  await request(d.port, '/track?day=1', { host: 'gr.test' });
  chownSync(log, nobody.uid, nobody.gid);
  await d.waitLog((l) => l.msg === 'writing again');
  t.equal(await d.stop(), 0);
  t.same(dayLines(log, 'gr', '2026-06-30'), ['{"day":"30"}']);
  t.same(dayLines(log, 'gr', '2026-07-01'), ['{"day":"1"}']);
});

t.test('the flavor directory removed under a running daemon: recreated, nothing lost', async (t) => {
  const d = await startDaemon();
  const log = join(d.dir, 'log');
  await request(d.port, '/track?n=1', { host: 'gr.test' });
  await until('the first Line in the file', () => dayLines(log, 'gr', today('Europe/Athens')).length === 1);
  rmSync(join(log, 'gr'), { recursive: true });
  await request(d.port, '/track?n=2', { host: 'gr.test' });
  t.equal(await d.stop(), 0);
  t.same(dayLines(log, 'gr', today('Europe/Athens')), ['{"n":"2"}']);
});

t.test('SIGHUP reopens files (rotation by rename)', async (t) => {
  const d = await startDaemon();
  const file = join(d.dir, 'log', 'gr', `gr-${today('Europe/Athens')}.log`);
  await request(d.port, '/track?n=1', { host: 'gr.test' });
  await until('the first Line in the file', () => dayLines(join(d.dir, 'log'), 'gr', today('Europe/Athens')).length === 1);
  renameSync(file, `${file}.1`);
  d.proc.kill('SIGHUP');
  await d.waitLog((l) => l.msg === 'reopening files');
  await request(d.port, '/track?n=2', { host: 'gr.test' });
  t.equal(await d.stop(), 0);
  t.same(dayLines(join(d.dir, 'log'), 'gr', today('Europe/Athens')), ['{"n":"2"}']);
  t.same(readFileSync(`${file}.1`, 'utf8'), '{"n":"1"}\n');
});
