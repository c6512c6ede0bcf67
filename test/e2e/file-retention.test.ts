// Sealed days compressed and pruned (issue 15): gzip off the request thread,
// the manifest gains both checksums; a compression cut short (a leftover temp
// file, a .gz the manifest does not name, a plain file left beside a named
// .gz) is put right at start-up; retainDays removes sealed days only.
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { compressDay } from '../../src/file/compress-day.js';
import type { Manifest } from '../../src/file/manifest.js';
import { dayPaths } from '../../src/file/paths.js';
import { sealDay } from '../../src/file/seal.js';
import { startDaemon } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { stats } from '../helpers/watch.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const at = (iso: string) => Date.parse(iso);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const nobody = { uid: 65534, gid: 65534 };
const manifestOf = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Manifest;

function newLogDir(): string {
  const log = join(mkdtempSync('/tmp/scratchd-days-'), 'log');
  mkdirSync(join(log, 'gr'), { recursive: true });
  return log;
}

const lines = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `{"${tag}":"${i}","pad":"${'z'.repeat(i % 50)}"}\n`).join('');

/** The .gz holds exactly the plain bytes the manifest describes; the manifest names the .gz by size and checksum. */
function checkCompressed(t: Test, log: string, day: string, plain: string): void {
  const p = dayPaths(log, 'gr', day);
  t.notOk(existsSync(p.log), `${day}: the plain file is gone`);
  t.notOk(existsSync(p.gzTemp), `${day}: no temp file`);
  const gz = readFileSync(p.gz);
  t.equal(gunzipSync(gz).toString(), plain, `${day}: the .gz holds exactly the day's bytes`);
  const m = manifestOf(p.done);
  t.match(m, { sha256: sha256(Buffer.from(plain)), bytes: Buffer.byteLength(plain), compressed: { file: `gr-${day}.log.gz`, bytes: gz.length, sha256: sha256(gz) } },
    `${day}: the manifest records both checksums`);
}

t.test('compress: gzip: a day sealed at midnight is compressed, the plain file removed after the rename', async (t) => {
  const t0 = at('2026-11-29T21:59:50Z');
  const d = await startDaemon({ clock: t0, config: { backends: { file: { idleCloseMs: 1000, compress: 'gzip' } } } });
  t.teardown(() => d.stop());
  const log = join(d.dir, 'log');
  await d.setClock(t0);
  const sent: string[] = [];
  for (let i = 0; i < 200; i++) {
    const q = `n=${i}&pad=${'y'.repeat(i % 100)}`;
    t.equal((await request(d.port, `/track?${q}`, { host: 'gr.test' })).status, 200);
    sent.push(`{"n":"${i}","pad":"${'y'.repeat(i % 100)}"}\n`);
  }
  await d.setClock(at('2026-11-29T22:00:05Z'));
  await d.waitLog((l) => l.msg === 'compressed day');
  checkCompressed(t, log, '2026-11-29', sent.join(''));
  t.ok(existsSync(dayPaths(log, 'gr', '2026-11-29').idx), 'the index stays (offsets into the uncompressed stream)');
  const s = (await stats(d)) as unknown as { file: { compressed_days: number; sealed_days: number } };
  t.match(s.file, { compressed_days: 1, sealed_days: 1 });
  t.match((await request((d.logs.find((l) => l.msg === 'stats listener ready')!.port) as number, '/metrics')).body.toString(),
    /^scratchd_file_compressed_days_total 1$/m);
  t.equal(await d.stop(), 0);
});

t.test('a compression cut short is put right at start-up', async (t) => {
  const log = newLogDir();
  // A: crashed before the rename: a partial temp file beside the sealed day.
  const a = dayPaths(log, 'gr', '2026-11-25');
  writeFileSync(a.log, lines(100, 'a'));
  await sealDay(a, 'gr', '2026-11-25', 0, 'test');
  writeFileSync(a.gzTemp, Buffer.from([0x1f, 0x8b, 8, 0, 1, 2])); // a torn gzip
  // B: crashed after the rename, before the manifest named it: a .gz the manifest does not know.
  const b = dayPaths(log, 'gr', '2026-11-26');
  writeFileSync(b.log, lines(50, 'b'));
  await sealDay(b, 'gr', '2026-11-26', 0, 'test');
  writeFileSync(b.gz, 'not what the manifest says');
  // C: crashed after the manifest named the .gz, before the plain file was removed.
  const c = dayPaths(log, 'gr', '2026-11-27');
  writeFileSync(c.log, lines(30, 'c'));
  await sealDay(c, 'gr', '2026-11-27', 0, 'test');
  copyFileSync(c.log, `${c.log}.keep`);
  await compressDay(c, new AbortController().signal);
  copyFileSync(`${c.log}.keep`, c.log);
  // D: never sealed (the crash came first), and a half-written manifest beside it.
  const dd = dayPaths(log, 'gr', '2026-11-28');
  writeFileSync(dd.log, lines(10, 'd'));
  writeFileSync(`${dd.done}.tmp`, '{"flavor":"gr"');

  const d = await startDaemon({ clock: at('2026-11-30T12:00:00Z'), config: { backends: { file: { dir: log, compress: 'gzip' } } } });
  t.teardown(() => d.stop());
  await until('[a, b, c, dd].every((p) => !existsSync(p.log))', () => [a, b, c, dd].every((p) => !existsSync(p.log)), 20_000);
  await until('d.logs.filter((l) => l.msg === \'compressed day\').length === 3', () => d.logs.filter((l) => l.msg === 'compressed day').length === 3);
  t.ok(d.logs.some((l) => l.msg === 'removed a leftover temp file' && l.file === a.gzTemp), 'the temp file removed');
  t.ok(d.logs.some((l) => l.msg === 'removed a leftover temp file' && l.file === `${dd.done}.tmp`), 'the half-written manifest removed');
  t.ok(d.logs.some((l) => l.msg === 'removed the plain file of a compressed day' && l.file === c.log));
  checkCompressed(t, log, '2026-11-25', lines(100, 'a'));
  checkCompressed(t, log, '2026-11-26', lines(50, 'b'));
  checkCompressed(t, log, '2026-11-27', lines(30, 'c'));
  checkCompressed(t, log, '2026-11-28', lines(10, 'd'));
  t.same(readdirSync(join(log, 'gr')).filter((n) => n.endsWith('.tmp')), [], 'no temp files left');
  t.equal(await d.stop(), 0);
});

t.test('retainDays: sealed days older than that are removed (every file), today and unsealed days never', async (t) => {
  const log = newLogDir();
  chownSync(join(log, 'gr'), nobody.uid, nobody.gid);
  chownSync(join(log, '..'), nobody.uid, nobody.gid);
  chownSync(log, nobody.uid, nobody.gid);
  const mk = async (day: string, opts: { seal?: boolean; gzip?: boolean } = {}) => {
    const p = dayPaths(log, 'gr', day);
    writeFileSync(p.log, lines(5, day));
    if (opts.seal !== false) await sealDay(p, 'gr', day, 0, 'test');
    if (opts.gzip === true) await compressDay(p, new AbortController().signal);
    for (const f of [p.log, p.idx, p.done, p.gz]) if (existsSync(f)) chownSync(f, nobody.uid, nobody.gid);
    return p;
  };
  const old1 = await mk('2026-11-20');
  const old2 = await mk('2026-11-26', { gzip: true });
  const unsealable = await mk('2026-11-25', { seal: false });
  chownSync(unsealable.log, 0, 0); // root's 0644: the daemon (nobody) cannot seal it
  const kept = await mk('2026-11-28');
  const today = await mk('2026-11-30', { seal: false });

  const d = await startDaemon({ user: nobody, clock: at('2026-11-30T12:00:00Z'), config: { backends: { file: { dir: log, retainDays: 2, idleCloseMs: 1000 } } } });
  t.teardown(() => d.stop());
  await until('d.logs.filter((l) => l.msg === \'pruned day\').length === 2', () => d.logs.filter((l) => l.msg === 'pruned day').length === 2, 20_000);
  for (const p of [old1, old2]) {
    for (const f of Object.values(p)) t.notOk(existsSync(f), `removed: ${f}`);
  }
  t.ok(d.logs.some((l) => l.msg === 'pruned day' && l.day === '2026-11-20'), 'logged');
  t.ok(existsSync(unsealable.log), 'an unsealed day is never removed, however old');
  t.ok(existsSync(kept.log) && existsSync(kept.done), 'a day within retainDays is kept');
  t.ok(existsSync(today.log), "today's file is kept");
  const s = (await stats(d)) as unknown as { file: { pruned_days: number; unsealed_past_days: Record<string, string[]> } };
  t.equal(s.file.pruned_days, 2);
  t.same(s.file.unsealed_past_days, { gr: ['2026-11-25'] }, '/stats lists the day it cannot seal');
  // Another pass (idleCloseMs 1000 → every second) prunes nothing more.
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(d.logs.filter((l) => l.msg === 'pruned day').length, 2);
  t.ok(existsSync(unsealable.log));
  t.equal(await d.stop(), 0);
});

t.test('config: compress and retainDays are checked up front', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { mainJs, tempDir } = await import('../helpers/daemon.js');
  const dir = tempDir();
  const check = (file: object) => {
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' }], backends: { file } }));
    const r = spawnSync(...withoutTapHooks(process.execPath, [mainJs, '--config', path, '--check']), { encoding: 'utf8' });
    return { code: r.status, stderr: r.stderr.replaceAll(path, 'FILE') };
  };
  t.equal(check({ compress: 'gzip', retainDays: 30 }).code, 0);
  t.equal(check({ retainDays: null }).code, 0, 'null keeps every day');
  const zstd = check({ compress: 'zstd' });
  t.equal(zstd.code, 1);
  t.match(zstd.stderr, 'FILE: /backends/file/compress: must be equal to one of the allowed values (none, gzip)');
  for (const v of [0, 36501, 1.5, '7']) {
    const r = check({ retainDays: v });
    t.equal(r.code, 1, `retainDays ${JSON.stringify(v)} rejected`);
    t.match(r.stderr, 'FILE: /backends/file/retainDays: must be');
  }
});

t.test('SIGKILL while a day is being compressed: the next start removes the temp file and compresses again', async (t) => {
  const log = newLogDir();
  const p = dayPaths(log, 'gr', '2026-11-20');
  // Big enough that compressing takes a while: random-ish Lines that gzip cannot shrink to nothing.
  const { randomBytes } = await import('node:crypto');
  const chunks: string[] = [];
  for (let i = 0; i < 200_000; i++) chunks.push(`{"n":"${i}","r":"${randomBytes(48).toString('base64')}"}\n`);
  const plain = chunks.join('');
  writeFileSync(p.log, plain);
  const config = { backends: { file: { dir: log, compress: 'gzip' } } };
  // The compression starts with the file backend, while the serving threads
  // still start: watch for its temp file from the spawn on, and kill then.
  let proc: ChildProcess | null = null;
  let gone: Promise<unknown> = Promise.resolve();
  const killed = new Promise<void>((resolve) => {
    const w = watch(dirname(p.gzTemp), () => {
      if (proc === null || !existsSync(p.gzTemp)) return;
      proc.kill('SIGKILL');
      w.close();
      resolve();
    });
  });
  const first = startDaemon({
    clock: at('2026-11-30T12:00:00Z'), config,
    onSpawn: (child) => {
      proc = child;
      gone = new Promise((resolve) => child.once('exit', resolve));
    },
  });
  first.catch(() => {}); // killed before it was ready, maybe
  await killed;
  await gone;
  t.ok(existsSync(p.gzTemp) && !existsSync(p.gz), 'killed between compressing and the rename');
  t.ok(existsSync(p.log) && existsSync(p.done), 'the sealed day is intact');

  const again = await startDaemon({ clock: at('2026-11-30T12:00:00Z'), config });
  t.teardown(() => again.stop());
  await again.waitLog((l) => l.msg === 'compressed day', 60_000);
  t.ok(again.logs.some((l) => l.msg === 'removed a leftover temp file' && l.file === p.gzTemp));
  checkCompressed(t, log, '2026-11-20', plain);
  t.equal(await again.stop(), 0);
});
