// Disk faults under the file backend, against the real daemon: a full file
// system (a 1 MiB tmpfs filled to ENOSPC), also at shutdown; the flavor's
// path taken by a file; permissions of the open day file dropped and restored. The unwritable log dir at start and the removed
// flavor directory are in file.test.ts. Throughout: HTTP answers 200 at once,
// errors are counted and logged, no partial or interleaved line is ever on
// disk, writing resumes by itself, and the retried Lines are not lost.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { dayLines, drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { sleep, until } from '../helpers/wait.js';
import { stats } from '../helpers/watch.js';
import { fillDisk as fill, mountTmpfs } from '../helpers/tmpfs.js';

const nobody = { uid: 65534, gid: 65534 };
const athens = () => dayOf(Date.now(), 'Europe/Athens');
const pad = 'p'.repeat(300);
const lineOf = (n: number) => `{"n":"${n}","pad":"${pad}"}`;

const tmpfs = (t: TAP): string => mountTmpfs(t, tempDir('scratchd-tmpfs-'), '1m');

/** Every line of the day file parses as one of the Lines sent; the file never ends mid-line. */
function checkWhole(t: TAP, log: string, sent: Set<string>, when: string): string[] {
  const file = join(log, 'gr', `gr-${athens()}.log`);
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  t.ok(text === '' || text.endsWith('\n'), `${when}: the file ends with a whole line`);
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const bad = lines.filter((l) => {
    try {
      JSON.parse(l);
    } catch {
      return true;
    }
    return !sent.has(l);
  });
  t.same(bad.map((l) => l.slice(0, 60)), [], `${when}: every line is whole JSON and one of the sent Lines`);
  return lines;
}

async function send(d: Daemon, from: number, to: number, sent: Set<string>): Promise<number[]> {
  const statuses: number[] = [];
  for (let n = from; n < to; n++) {
    const started = performance.now();
    const r = await request(d.port, `/track?n=${n}&pad=${pad}`, { host: 'gr.test' });
    statuses.push(r.status);
    if (performance.now() - started > 500) statuses.push(-1); // too slow: shows up as a wrong status
    sent.add(lineOf(n));
  }
  return statuses;
}

type TAP = Test;

t.test('ENOSPC on a 1 MiB tmpfs: HTTP unaffected, errors counted, no partial line, resumes when space is freed, nothing lost', async (t) => {
  const log = tmpfs(t);
  // Only the first attempt meets the full disk with a short write (taken
  // back at once); retries ask statfs first and leave the file alone, so a
  // reader never sees a partial last line while the disk stays full.
  const d = await startDaemon({ config: { backends: { file: { dir: log, retryMs: 500 } } } });
  t.teardown(() => d.stop());
  const sent = new Set<string>();

  t.same([...new Set(await send(d, 0, 20, sent))], [200]);
  await until('20 Lines in the file', () => dayLines(log, 'gr', athens()).length === 20);
  const filler = fill(log);
  t.ok(filler > 0, `filled with ${filler} bytes`);

  t.same([...new Set(await send(d, 20, 120, sent))], [200], 'a full disk costs HTTP nothing');
  const err = await d.waitLog((l) => l.msg === 'write failed; retrying');
  t.equal(err.kind, 'ENOSPC');
  t.equal(err.file, join(log, 'gr', `gr-${athens()}.log`));
  const during = await stats(d);
  t.ok(during.backends.file!.failed! >= 1, `failed counted: ${during.backends.file!.failed}`);
  t.ok(during.backends.file!.queued! > 0, `Lines held for retry: ${during.backends.file!.queued}`);
  // Keep failing for a while, sending meanwhile; the file must stay whole at
  // every look, and the retries must not touch it at all (a retry that wrote
  // and took back a short write would change its mtime).
  await until('a first retry', async () => (await stats(d)).backends.file!.retried! >= 1);
  const file = join(log, 'gr', `gr-${athens()}.log`);
  const held = statSync(file);
  const retried = (await stats(d)).backends.file!.retried!;
  for (let i = 0; i < 5; i++) {
    t.same([...new Set(await send(d, 120 + i * 10, 130 + i * 10, sent))], [200]);
    checkWhole(t, log, sent, `during the fault (${i})`);
    await sleep(300);
  }
  await until('two more retries', async () => (await stats(d)).backends.file!.retried! >= retried + 2);
  const still = statSync(file);
  t.same([still.size, still.mtimeMs], [held.size, held.mtimeMs], 'retries on a full disk leave the file untouched');
  t.equal(d.logs.filter((l) => l.msg === 'write failed; retrying').length, 1, 'repeated errors are rate-limited in the log');

  unlinkSync(join(log, 'filler'));
  await d.waitLog((l) => l.msg === 'writing again');
  t.same([...new Set(await send(d, 170, 180, sent))], [200]);
  await until('180 Lines in the file', () => dayLines(log, 'gr', athens()).length === 180);
  const after = await stats(d);
  t.equal(after.backends.file!.persisted, 180);
  t.equal(await d.stop(), 0);
  const lines = checkWhole(t, log, sent, 'after');
  t.equal(lines.length, 180, 'every Line once');
  t.same(new Set(lines), sent, 'exactly the sent Lines, the retried ones included');
  const c = drainedCounters(d.logs, 'file');
  t.equal(c.persisted, 180);
  t.equal(c.dropped, 0);
  t.ok(c.failed! >= 1 && c.failed === c.retried, `failed ${c.failed} = retried ${c.retried} ≥ 1`);
});

t.test('still full at SIGTERM: exit 2 after the drain timeout, the held Lines reported lost, the file whole', async (t) => {
  const log = tmpfs(t);
  const d = await startDaemon({ config: { backends: { file: { dir: log, retryMs: 50 } }, shutdown: { drainTimeoutMs: 1500, graceMs: 0 } } });
  t.teardown(() => d.stop());
  const sent = new Set<string>();
  t.same([...new Set(await send(d, 0, 3, sent))], [200]);
  await until('3 Lines in the file', () => dayLines(log, 'gr', athens()).length === 3);
  fill(log);
  t.same([...new Set(await send(d, 3, 40, sent))], [200]);
  await d.waitLog((l) => l.msg === 'write failed; retrying');
  t.equal(await d.stop(), 2);
  const lost = d.logs.find((l) => l.msg === 'drain timed out; queued Lines lost') as { lost: { file: number } } | undefined;
  t.ok(lost !== undefined && lost.lost.file > 0, `lost Lines reported: ${JSON.stringify(lost?.lost)}`);
  const lines = checkWhole(t, log, sent, 'after the timed-out drain');
  t.equal(lines.length + lost!.lost.file, 40, 'each Line either in the file or reported lost');
  // The next run appends after whole lines only.
  unlinkSync(join(log, 'filler'));
  const again = await startDaemon({ config: { backends: { file: { dir: log } } } });
  t.same([...new Set(await send(again, 40, 41, sent))], [200]);
  t.equal(await again.stop(), 0);
  t.same(checkWhole(t, log, sent, 'after the next run').at(-1), lineOf(40));
});

t.test('the flavor path taken by a file: ENOTDIR/EEXIST counted, recovers when it is removed', async (t) => {
  const d = await startDaemon({ config: { backends: { file: { retryMs: 50 } } } });
  t.teardown(() => d.stop());
  const log = join(d.dir, 'log');
  const sent = new Set<string>();
  mkdirSync(log, { recursive: true });
  writeFileSync(join(log, 'gr'), 'not a directory\n');
  t.same([...new Set(await send(d, 0, 5, sent))], [200]);
  const err = await d.waitLog((l) => l.msg === 'write failed; retrying');
  t.match(err.kind, /^(EEXIST|ENOTDIR)$/);
  unlinkSync(join(log, 'gr'));
  await d.waitLog((l) => l.msg === 'writing again');
  t.equal(await d.stop(), 0);
  t.same(checkWhole(t, log, sent, 'after'), [...sent]);
  t.equal(drainedCounters(d.logs, 'file').persisted, 5);
});

t.test('permissions of the open day file dropped: felt at the next reopen (SIGHUP), counted, resumes when restored', async (t) => {
  const d = await startDaemon({ user: nobody, config: { backends: { file: { retryMs: 50 } } } });
  t.teardown(() => d.stop());
  const log = join(d.dir, 'log');
  const file = join(log, 'gr', `gr-${athens()}.log`);
  const sent = new Set<string>();
  t.same([...new Set(await send(d, 0, 3, sent))], [200]);
  await until('3 Lines in the file', () => dayLines(log, 'gr', athens()).length === 3);
  chmodSync(file, 0o440);
  t.same([...new Set(await send(d, 3, 6, sent))], [200]);
  await until('6 Lines in the file', () => dayLines(log, 'gr', athens()).length === 6);
  t.pass('an open descriptor keeps writing: permissions are checked at open');
  d.proc.kill('SIGHUP');
  await d.waitLog((l) => l.msg === 'reopening files');
  t.same([...new Set(await send(d, 6, 10, sent))], [200]);
  const err = await d.waitLog((l) => l.msg === 'write failed; retrying');
  t.equal(err.kind, 'EACCES');
  t.equal(((await stats(d)).backends.file as Record<string, number>).persisted, 6);
  chmodSync(file, 0o640);
  await d.waitLog((l) => l.msg === 'writing again');
  t.equal(await d.stop(), 0);
  t.same(checkWhole(t, log, sent, 'after'), [...sent]);
  const c = drainedCounters(d.logs, 'file');
  t.equal(c.persisted, 10);
  t.ok(c.failed! >= 1 && c.failed === c.retried);
});
