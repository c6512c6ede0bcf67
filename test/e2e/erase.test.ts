// `scratchd erase` on days the daemon sealed (and gzipped) itself: one
// visitor's Lines gone, the others byte for byte, the manifest's checksums
// verified with sha256sum, the unsealed day refused with one line, bad
// arguments refused, a dry run changing nothing.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { mainJs, startDaemon, tempDir, testFlavors } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { dayPaths } from '../../src/file/paths.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const at = (iso: string): number => Date.parse(iso);

function erase(config: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(...withoutTapHooks(process.execPath, [mainJs, 'erase', '--config', config, ...args]), { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function sha256sum(path: string): string {
  return spawnSync('sha256sum', [path], { encoding: 'utf8' }).stdout.split(' ')[0]!;
}

for (const compress of ['gzip', 'none'] as const) {
  t.test(`erase from days the daemon sealed (compress: ${compress})`, async (t) => {
    const t0 = at('2026-11-29T21:59:50Z'); // 23:59:50 in Athens
    const d = await startDaemon({ clock: t0, config: { backends: { file: { compress, idleCloseMs: 1000 } } } });
    const log = join(d.dir, 'log');
    for (const q of ['uid=7&a=1', 'uid=8&a=2', 'uid=7&a=3', 'a=4']) t.equal((await request(d.port, `/track?${q}`, { host: 'gr.test' })).status, 200);
    await d.setClock(at('2026-11-29T22:00:05Z'));
    t.equal((await request(d.port, '/track?uid=7&a=5', { host: 'gr.test' })).status, 200);
    await d.waitLog((l) => l.msg === (compress === 'gzip' ? 'compressed day' : 'sealed day') && String(l.file).includes('gr-2026-11-29'));
    const configFile = join(d.dir, 'config.json');
    const paths = dayPaths(log, 'gr', '2026-11-29');
    const plainOf = (): string => (compress === 'gzip' ? gunzipSync(readFileSync(paths.gz)) : readFileSync(paths.log)).toString();
    const before = plainOf();

    const refused = erase(configFile, '--flavor', 'gr', '--field', 'uid', '--value', '7', '--from', '2026-11-29', '--to', '2026-11-30');
    t.equal(refused.code, 1, 'a range with the open day is refused');
    t.match(refused.err, /^scratchd erase: refused, nothing changed: 2026-11-30 \(not sealed\)/);
    t.equal(refused.err.split('\n').length, 2, 'in one line');
    t.equal(plainOf(), before);

    const dry = erase(configFile, '--flavor', 'gr', '--field', 'uid', '--value', '7', '--dry-run');
    t.equal(dry.code, 0);
    t.match(dry.out, 'gr 2026-11-29: 2 of 4 Lines would be erased');
    t.equal(plainOf(), before, 'a dry run changes nothing');

    const done = erase(configFile, '--flavor', 'gr', '--field', 'uid', '--value', '7');
    t.equal(done.code, 0, done.err);
    t.match(done.out, 'gr 2026-11-29: 2 of 4 Lines erased');
    t.match(done.out, 'erased 2 Lines from 1 sealed days of gr (uid = "7")');
    t.equal(plainOf(), '{"uid":"8","a":"2"}\n{"a":"4"}\n', 'the other Lines, byte for byte');
    const m = JSON.parse(readFileSync(paths.done, 'utf8'));
    t.match(m, { lines: 2, bytes: Buffer.byteLength(plainOf()), erased: { count: 2 } });
    if (compress === 'gzip') {
      t.equal(sha256sum(paths.gz), m.compressed.sha256, 'sha256sum of the .gz is the manifest\'s');
      t.notOk(existsSync(paths.log), 'no plain file beside the .gz');
    } else {
      t.equal(sha256sum(paths.log), m.sha256, 'sha256sum of the day is the manifest\'s');
    }
    t.equal((await request(d.port, '/track?uid=7&a=6', { host: 'gr.test' })).status, 200, 'the daemon serves on');
    t.equal(await d.stop(), 0);
    const today = readFileSync(dayPaths(log, 'gr', '2026-11-30').log, 'utf8');
    t.equal(today, '{"uid":"7","a":"5"}\n{"uid":"7","a":"6"}\n', 'the open day is untouched');
  });
}

t.test('arguments', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const configFile = join(d.dir, 'config.json');
  for (const [args, message] of [
    [['--flavor', 'gr', '--field', 'uid'], '--flavor, --field and --value are required'],
    [['--flavor', 'xx', '--field', 'uid', '--value', '1'], 'unknown flavor "xx"'],
    [['--flavor', 'gr', '--field', 'uid', '--value', '1', '--from', '2026-02-30'], '--from 2026-02-30: not a date'],
    [['--flavor', 'gr', '--field', 'uid', '--value', '1', '--from', '2026-03-02', '--to', '2026-03-01'], 'is after --to'],
  ] as const) {
    const r = erase(configFile, ...args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.err, message);
  }
  writeFileSync(join(d.dir, 'unused'), '');
  t.equal(erase(configFile, '--help').code, 0);
});

// Two data-subject requests erased at once by two processes: before the lock,
// both rewrote the same temp files and one run reported its Lines erased
// while the day still held them. Now one runs and the other is refused in
// one line (or runs after it); each run that says "erased" erased.
t.test('two erase runs at once: one at a time, none reports an erasure it did not make', async (t) => {
  const dir = tempDir();
  const config = join(dir, 'config.json');
  const log = join(dir, 'log');
  writeFileSync(config, JSON.stringify({ listen: '127.0.0.1:0', stats: { listen: '127.0.0.1:0' }, flavors: testFlavors, stateDir: join(dir, 'state'), backends: { file: { dir: log } } }));
  const paths = dayPaths(log, 'gr', '2026-11-01');
  mkdirSync(join(log, 'gr'), { recursive: true });
  const plain = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `{"n":"${i}","uid":"${i % 3}","pad":"${'x'.repeat(100)}"}\n`).join(''));
  writeFileSync(paths.log, plain);
  writeFileSync(paths.done, `${JSON.stringify({ flavor: 'gr', day: '2026-11-01', lines: 60_000, bytes: plain.length, sha256: createHash('sha256').update(plain).digest('hex'), firstTime: null, lastTime: null, version: 't' })}\n`);
  const run = (value: string): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
    const p = spawn(...withoutTapHooks(process.execPath, [mainJs, 'erase', '--config', config, '--flavor', 'gr', '--field', 'uid', '--value', value]));
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    p.on('close', (code) => resolve({ code, out, err }));
  });
  const [one, two] = await Promise.all([run('1'), run('2')]);
  const day = readFileSync(paths.log);
  t.equal(sha256sum(paths.log), JSON.parse(readFileSync(paths.done, 'utf8')).sha256, 'the day is what its manifest says');
  const uids = new Set(day.toString().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { uid: string }).uid));
  for (const [value, r] of [['1', one], ['2', two]] as const) {
    if (r.code === 0) {
      t.match(r.out, `gr 2026-11-01: 20000 of`, `run ${value} erased`);
      t.notOk(uids.has(value), `run ${value} said erased: no uid ${value} left`);
    } else {
      t.match(r.err, /^scratchd erase: refused, nothing changed: another erase \(pid \d+\) is running in .*\n$/, `run ${value} refused in one line`);
    }
  }
  t.ok(one.code === 0 || two.code === 0, 'at least one ran');

  const other = spawn('sleep', ['30']);
  writeFileSync(join(log, 'gr', 'erase.lock'), `${other.pid}\n`);
  const reused = erase(config, '--flavor', 'gr', '--field', 'uid', '--value', '0', '--dry-run');
  t.equal(reused.code, 0, 'a dry run takes no lock');
  const afterReboot = erase(config, '--flavor', 'gr', '--field', 'uid', '--value', '7');
  other.kill();
  t.equal(afterReboot.code, 0, `a lock whose pid is now another program's is taken over: ${afterReboot.err}`);
  writeFileSync(join(log, 'gr', 'erase.lock'), '999999999\n');
  const afterCrash = erase(config, '--flavor', 'gr', '--field', 'uid', '--value', '0');
  t.equal(afterCrash.code, 0, `a lock left by a run that is gone is taken over: ${afterCrash.err}`);
  t.notOk(existsSync(join(log, 'gr', 'erase.lock')), 'and removed at the end');
});
