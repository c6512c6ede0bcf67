// One broken flavor never stalls another (issue 15): under steady load on
// three flavors, `gr` is broken three ways (its directory replaced by a file:
// ENOTDIR; its file made unwritable: EACCES; its own tmpfs filled: ENOSPC).
// Throughout, `tr` and `uk` keep reaching disk and lose nothing; `gr` holds
// at most its share of the queue (queueCapacity / 3), drops the rest counted
// under its own name, and recovers by itself once repaired.
import { chmodSync, mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { dayLines, drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { stats } from '../helpers/watch.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';

const nobody = { uid: 65534, gid: 65534 };
const zones: Record<string, string> = { gr: 'Europe/Athens', tr: 'Europe/Istanbul', uk: 'Europe/London' };
const today = (flavor: string) => dayOf(Date.now(), zones[flavor]!);
// Room for the healthy flavors to ride out a starved CPU (other test files
// beside this one) without a drop; gr still overflows its share in a second.
const CAPACITY = 300;
const SHARE = CAPACITY / 3;

/** Steady load: one keep-alive client per flavor, a request every few ms, each Line numbered. */
function steadyLoad(d: Daemon) {
  const sent: Record<string, number[]> = { gr: [], tr: [], uk: [] };
  let running = true;
  const loops = Object.keys(sent).map(async (flavor) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let n = 0; running; n++) {
      const r = await request(d.port, `/track?f=${flavor}&n=${n}`, { host: `${flavor}.test`, agent });
      if (r.status !== 200) throw new Error(`${flavor} ${n}: ${r.status}`);
      sent[flavor]!.push(n);
      await new Promise((r) => setTimeout(r, 3));
    }
    agent.destroy();
  });
  return {
    sent,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

const numbers = (log: string, flavor: string) => dayLines(log, flavor, today(flavor)).map((l) => Number((JSON.parse(l) as { n: string }).n));

async function metric(d: Daemon, line: RegExp): Promise<number | undefined> {
  const text = (await request(d.statsPort!, '/metrics')).body.toString();
  const m = line.exec(text);
  return m === null ? undefined : Number(m[1]);
}

/**
 * Start the load, break gr, check the healthy flavors keep writing while gr
 * fails, repair gr, check it recovers, stop and count every Line.
 */
async function isolation(t: Test, d: Daemon, log: string, kind: RegExp, breakGr: () => void, repairGr: () => void): Promise<void> {
  const load = steadyLoad(d);
  await until('load.sent.gr!.length >= 20 && numbers(log, \'gr\').length >= 10', () => load.sent.gr!.length >= 20 && numbers(log, 'gr').length >= 10);
  breakGr();
  const err = await d.waitLog((l) => l.msg === 'write failed; retrying' && l.flavor === 'gr');
  t.match(err.kind, kind, `gr fails with ${err.kind}`);
  // While gr is failing, tr and uk keep reaching disk: every Line sent so far
  // lands, several times over, and gr holds no more than its share.
  for (let round = 0; round < 3; round++) {
    const mark = { tr: load.sent.tr!.length, uk: load.sent.uk!.length };
    await until('numbers(log, \'tr\').length >= mark.tr && numbers(log, \'uk\').leng...', () => numbers(log, 'tr').length >= mark.tr && numbers(log, 'uk').length >= mark.uk, 5000);
    const s = (await stats(d)) as unknown as { file: { flavors: Record<string, { failing: number; queued: number; dropped: number }> } };
    t.equal(s.file.flavors.gr!.failing, 1, `round ${round}: gr still failing`);
    t.ok(s.file.flavors.gr!.queued <= SHARE, `round ${round}: gr holds ${s.file.flavors.gr!.queued} ≤ its share ${SHARE}`);
    t.equal(s.file.flavors.tr!.dropped + s.file.flavors.uk!.dropped, 0, `round ${round}: tr and uk drop nothing`);
  }
  // Keep loading until gr has overflowed its share.
  const grDroppedRe = /^scratchd_backend_dropped_total\{backend="file",flavor="gr"\} (\d+)$/m;
  for (const deadline = Date.now() + 10_000; ((await metric(d, grDroppedRe)) ?? 0) === 0 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const grDropped = await metric(d, grDroppedRe);
  t.ok(grDropped! > 0, `gr's own Lines dropped and counted under its name: ${grDropped}`);
  t.equal(await metric(d, /^scratchd_backend_dropped_total\{backend="file",flavor="tr"\} (\d+)$/m), 0);
  t.equal(await metric(d, /^scratchd_backend_dropped_total\{backend="file",flavor="uk"\} (\d+)$/m), 0);

  repairGr();
  await d.waitLog((l) => l.msg === 'writing again' && l.flavor === 'gr');
  const afterRepair = load.sent.gr!.length;
  await until('load.sent.gr!.length >= afterRepair + 20', () => load.sent.gr!.length >= afterRepair + 20);
  await load.stop();
  t.equal(await d.stop(), 0);

  for (const f of ['tr', 'uk']) t.same(numbers(log, f), load.sent[f], `${f}: every Line, once, in order`);
  const gr = numbers(log, 'gr');
  t.equal(new Set(gr).size, gr.length, 'gr: no Line twice');
  t.same(gr.slice(-20), load.sent.gr!.slice(-20), 'gr: written again once repaired');
  const c = drainedCounters(d.logs, 'file');
  t.equal(c.persisted, gr.length + load.sent.tr!.length + load.sent.uk!.length, 'persisted = Lines on disk');
  t.equal(c.dropped, load.sent.gr!.length - gr.length, 'only gr dropped, and every gr Line is written or dropped');
}

t.test('gr directory replaced by a file (ENOTDIR) and reopened: tr and uk lose nothing, gr recovers', async (t) => {
  const d = await startDaemon({ config: { backends: { file: { retryMs: 50, queueCapacity: CAPACITY } } } });
  t.teardown(() => d.stop());
  const log = join(d.dir, 'log');
  await isolation(t, d, log, /^(ENOTDIR|EEXIST)$/, () => {
    renameSync(join(log, 'gr'), join(log, 'gr.away'));
    writeFileSync(join(log, 'gr'), 'not a directory\n');
    d.proc.kill('SIGHUP');
  }, () => {
    unlinkSync(join(log, 'gr'));
    renameSync(join(log, 'gr.away'), join(log, 'gr'));
  });
});

t.test('gr file unwritable (EACCES) and reopened: tr and uk lose nothing, gr recovers', async (t) => {
  const d = await startDaemon({ user: nobody, config: { backends: { file: { retryMs: 50, queueCapacity: CAPACITY } } } });
  t.teardown(() => d.stop());
  const log = join(d.dir, 'log');
  const file = join(log, 'gr', `gr-${today('gr')}.log`);
  await isolation(t, d, log, /^EACCES$/, () => {
    chmodSync(file, 0o440);
    d.proc.kill('SIGHUP');
  }, () => chmodSync(file, 0o640));
});

t.test('gr on its own full tmpfs (ENOSPC): tr and uk lose nothing, gr recovers when space is freed', async (t) => {
  const dir = tempDir();
  const log = join(dir, 'log');
  const grDir = join(log, 'gr');
  mkdirSync(grDir, { recursive: true });
  mountTmpfs(t, grDir, '256k');
  const d = await startDaemon({ config: { backends: { file: { dir: log, retryMs: 50, queueCapacity: CAPACITY } } } });
  t.teardown(() => d.stop());
  const filler = join(grDir, 'filler');
  await isolation(t, d, log, /^ENOSPC$/, () => fillDisk(grDir), () => unlinkSync(filler));
});
