// Audit 2: the file backend on a really full disk (a 1 MiB tmpfs filled to
// ENOSPC) meeting reloads and a SIGKILL. A SIGHUP reopens the files while
// their writes fail; a SIGKILL while Lines wait for space, then a restart on
// the same directory once space is back. The file is whole at every look,
// each Line at most once, and, but for the SIGKILL, every answered Line in it.
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon, tempDir } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { sleep, until } from '../helpers/wait.js';
import { stats } from '../helpers/watch.js';
import { fillDisk as fill, mountTmpfs } from '../helpers/tmpfs.js';

const athens = () => dayOf(Date.now(), 'Europe/Athens');
const pad = 'p'.repeat(300);

const tmpfs = (t: Test): string => mountTmpfs(t, tempDir('scratchd-audit2-tmpfs-'), '1m');

/** The day file's lines; fails unless it ends with a whole line and each line is one sent, once. */
function whole(t: Test, log: string, when: string): string[] {
  const file = join(log, 'gr', `gr-${athens()}.log`);
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  t.ok(text === '' || text.endsWith('\n'), `${when}: ends with a whole line`);
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const ns = lines.map((l) => (JSON.parse(l) as { n: string }).n);
  t.equal(new Set(ns).size, ns.length, `${when}: no Line twice`);
  return ns;
}

async function send(port: number, from: number, to: number): Promise<void> {
  for (let n = from; n < to; n++) {
    const r = await request(port, `/track?n=${n}&pad=${pad}`, { host: 'gr.test' });
    if (r.status !== 200) throw new Error(`answered ${r.status}`);
  }
}

t.test('SIGHUP while the disk is full: every Line once, whole, once space is back', async (t) => {
  const log = tmpfs(t);
  const d = await startDaemon({ config: { backends: { file: { dir: log, retryMs: 200 } } } });
  t.teardown(() => d.stop());
  await send(d.port, 0, 10);
  fill(log);
  await send(d.port, 10, 60);
  await d.waitLog((l) => l.msg === 'write failed; retrying');
  for (let i = 0; i < 3; i++) {
    d.proc.kill('SIGHUP');
    await send(d.port, 60 + i * 10, 70 + i * 10);
    await sleep(300);
    whole(t, log, `during the fault, reload ${i}`);
  }
  unlinkSync(join(log, 'filler'));
  await until('every Line written', async () => (await stats(d)).backends.file!.persisted === 90);
  t.equal(await d.stop(), 0);
  t.same(whole(t, log, 'after').map(Number).sort((a, b) => a - b), Array.from({ length: 90 }, (_, i) => i), 'all 90, once');
});

t.test('SIGKILL while Lines wait for space, restart once it is back: whole, none twice, the earlier ones kept', async (t) => {
  const log = tmpfs(t);
  const config = { backends: { file: { dir: log, retryMs: 200 } } };
  const d = await startDaemon({ config });
  await send(d.port, 0, 10);
  await until('10 written', async () => (await stats(d)).backends.file!.persisted === 10);
  fill(log);
  await send(d.port, 10, 40);
  await d.waitLog((l) => l.msg === 'write failed; retrying');
  d.proc.kill('SIGKILL');
  await d.exited;
  whole(t, log, 'after the kill');
  unlinkSync(join(log, 'filler'));
  const d2 = await startDaemon({ config });
  t.teardown(() => d2.stop());
  await send(d2.port, 100, 110);
  t.equal(await d2.stop(), 0);
  const ns = whole(t, log, 'after the restart').map(Number);
  t.same(ns.filter((n) => n < 10).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i), 'the Lines written before the fault');
  t.same(ns.filter((n) => n >= 100).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => 100 + i), 'the Lines after the restart');
});
