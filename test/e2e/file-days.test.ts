// Finished days (issue 15), with the injectable clock: midnight in three time
// zones seals each flavor's day on its own (manifest counts match the file,
// the sparse index points at batch starts), a Line for a sealed day goes to a
// later file and is counted late, a torn last Line is cut off at start-up,
// /stats lists the past days still open.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodeEntries } from '../../src/file/day-index.js';
import type { Manifest } from '../../src/file/manifest.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { stats } from '../helpers/watch.js';

const at = (iso: string) => Date.parse(iso);
const file = (log: string, flavor: string, day: string, ext = '') => join(log, flavor, `${flavor}-${day}.log${ext}`);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function send(d: Daemon, host: string, queries: string[]): Promise<void> {
  for (const q of queries) {
    const r = await request(d.port, `/track?${q}`, { host });
    if (r.status !== 200) throw new Error(`${host} ${q}: ${r.status}`);
  }
}

const sealedLog = (flavor: string, day: string) => (l: Record<string, unknown>) =>
  l.msg === 'sealed day' && String(l.file).endsWith(`/${flavor}-${day}.log`);

/** The manifest agrees with the file: lines, bytes, sha256, times within [from, to]; the index points at batch starts. */
function checkSealed(t: Test, log: string, flavor: string, day: string, lines: string[], from: number, to: number): Manifest {
  const data = readFileSync(file(log, flavor, day));
  t.equal(data.toString(), lines.map((l) => `${l}\n`).join(''), `${flavor} ${day}: exactly its Lines`);
  const text = readFileSync(file(log, flavor, day, '.done'), 'utf8');
  t.ok(text.endsWith('}\n') && text.indexOf('\n') === text.length - 1, 'manifest: one JSON line');
  const m = JSON.parse(text) as Manifest;
  t.same(Object.keys(m), ['flavor', 'day', 'instance', 'lines', 'bytes', 'sha256', 'firstTime', 'lastTime', 'version'], 'manifest fields, in order');
  t.match(m, { flavor, day, lines: lines.length, bytes: data.length, sha256: sha256(data), version: '0.1.0' });
  const first = Date.parse(m.firstTime!);
  const last = Date.parse(m.lastTime!);
  t.ok(from <= first && first <= last && last <= to, `${flavor} ${day}: times ${m.firstTime}..${m.lastTime} within the clock's range`);
  const idx = decodeEntries(readFileSync(file(log, flavor, day, '.idx')));
  t.ok(idx.length >= 1, `${flavor} ${day}: ${idx.length} index entries`);
  t.equal(idx[0]!.offset, 0, 'the first batch starts at 0');
  t.equal(idx[0]!.time, first, "the first entry's time is the first Line's");
  t.ok(idx.every((e, i) => (i === 0 || e.offset > idx[i - 1]!.offset) && e.offset < data.length && (e.offset === 0 || data[e.offset - 1] === 10)),
    'every entry at a Line start, increasing, inside the file');
  return m;
}

t.test('midnight in three zones: each flavor seals its own day, manifest and index match; a Line for a sealed day is late', async (t) => {
  // 2026-11-29T21:59:50Z: 23:59:50 in Athens (UTC+2), 00:59:50 on the 30th in Istanbul (UTC+3), 21:59:50 in London.
  const t0 = at('2026-11-29T21:59:50Z');
  const d = await startDaemon({ clock: t0, config: { backends: { file: { idleCloseMs: 1000, retryMs: 50 } } } });
  t.teardown(() => d.stop());
  const log = join(d.dir, 'log');
  await d.setClock(t0);
  await send(d, 'gr.test', ['a=1', 'a=2']);
  await send(d, 'tr.test', ['b=1']);
  await send(d, 'uk.test', ['c=1']);

  // Athens' midnight: gr's 29th is sealed, the others are untouched.
  const t1 = at('2026-11-29T22:00:05Z');
  await d.setClock(t1);
  await send(d, 'gr.test', ['a=3']);
  await d.waitLog(sealedLog('gr', '2026-11-29'));
  checkSealed(t, log, 'gr', '2026-11-29', ['{"a":"1"}', '{"a":"2"}'], t0, t1);
  t.notOk(existsSync(file(log, 'uk', '2026-11-29', '.done')), 'London has not reached midnight');

  // The clock stepped back to the 29th in Athens: the sealed day gets nothing more.
  await d.setClock(at('2026-11-29T21:59:59Z'));
  await send(d, 'gr.test', ['late=1']);
  await d.setClock(t1 + 1000);

  // London's midnight.
  const t2 = at('2026-11-30T00:00:05Z');
  await d.setClock(t2);
  await send(d, 'uk.test', ['c=2']);
  await d.waitLog(sealedLog('uk', '2026-11-29'));
  checkSealed(t, log, 'uk', '2026-11-29', ['{"c":"1"}'], t0, t2);

  // Istanbul's midnight (Athens is at 23:00 on the 30th).
  const t3 = at('2026-11-30T21:00:05Z');
  await d.setClock(t3);
  await d.waitLog(sealedLog('tr', '2026-11-30'));
  checkSealed(t, log, 'tr', '2026-11-30', ['{"b":"1"}'], t0, t3);

  const s = (await stats(d)) as unknown as { file: { late_lines: number; sealed_days: number; flavors: Record<string, { late: number }> } };
  t.equal(s.file.late_lines, 1, 'one late Line');
  t.equal(s.file.flavors.gr!.late, 1, 'counted for gr');
  t.equal(s.file.sealed_days, 3);
  t.equal(await d.stop(), 0);
  t.same(readFileSync(file(log, 'gr', '2026-11-29')).toString(), '{"a":"1"}\n{"a":"2"}\n', 'the sealed day is unchanged');
  t.same(dayLines(log, 'gr', '2026-11-30'), ['{"a":"3"}', '{"late":"1"}'], 'the late Line went to the next open day');
  t.notOk(existsSync(file(log, 'gr', '2026-11-30', '.done')), "today's file is never sealed");
  t.notOk(existsSync(file(log, 'uk', '2026-11-30', '.done')));
});

t.test('a past day still open is listed by /stats, and sealed at shutdown', async (t) => {
  const t0 = at('2026-06-30T20:59:58Z'); // 23:59:58 in Athens (UTC+3)
  const d = await startDaemon({ clock: t0, config: { backends: { file: { idleCloseMs: 600_000 } } } });
  t.teardown(() => d.stop());
  const log = join(d.dir, 'log');
  await d.setClock(t0);
  await send(d, 'gr.test', ['x=1']);
  await d.setClock(at('2026-06-30T21:00:30Z'));
  await send(d, 'gr.test', ['x=2']);
  const s = (await stats(d)) as unknown as { file: { unsealed_past_days: Record<string, string[]> } };
  t.same(s.file.unsealed_past_days, { gr: ['2026-06-30'] });
  t.notOk(existsSync(file(log, 'gr', '2026-06-30', '.done')), 'not sealed within idleCloseMs of midnight');
  t.equal(await d.stop(), 0);
  await d.waitLog(sealedLog('gr', '2026-06-30'));
  checkSealed(t, log, 'gr', '2026-06-30', ['{"x":"1"}'], t0, t0 + 5000);
  t.notOk(existsSync(file(log, 'gr', '2026-07-01', '.done')));
});

t.test('at start: a past day left unsealed (crash) is sealed, its torn last Line cut off to .torn; today\'s torn tail too', async (t) => {
  const now = at('2026-11-30T12:00:00Z');
  const d0 = { dir: '' };
  const log = (d0.dir = join(await import('node:fs').then((fs) => fs.mkdtempSync('/tmp/scratchd-torn-')), 'log'));
  mkdirSync(join(log, 'gr'), { recursive: true });
  writeFileSync(file(log, 'gr', '2026-11-28'), '{"a":"1"}\n{"a":"2"}\n{"a":"3","cut');
  writeFileSync(file(log, 'gr', '2026-11-30'), '{"t":"1"}\n{"t":"2');
  const d = await startDaemon({ clock: now, config: { backends: { file: { dir: log } } } });
  t.teardown(() => d.stop());
  await d.waitLog(sealedLog('gr', '2026-11-28'));
  t.equal(readFileSync(file(log, 'gr', '2026-11-28'), 'utf8'), '{"a":"1"}\n{"a":"2"}\n', 'whole Lines only');
  t.equal(readFileSync(file(log, 'gr', '2026-11-28', '.torn'), 'utf8'), '{"a":"3","cut\n', 'the torn tail kept aside');
  const m = JSON.parse(readFileSync(file(log, 'gr', '2026-11-28', '.done'), 'utf8')) as Manifest;
  const data = readFileSync(file(log, 'gr', '2026-11-28'));
  t.match(m, { lines: 2, bytes: data.length, sha256: sha256(data), firstTime: null, lastTime: null });
  await send(d, 'gr.test', ['t=3']);
  t.equal(await d.stop(), 0);
  t.same(dayLines(log, 'gr', '2026-11-30'), ['{"t":"1"}', '{"t":"3"}'], "today's torn tail cut before appending");
  t.equal(readFileSync(file(log, 'gr', '2026-11-30', '.torn'), 'utf8'), '{"t":"2\n');
  const drained = d.logs.filter((l) => l.msg === 'torn last line cut off');
  t.equal(drained.length, 2, 'both counted and logged');
});
