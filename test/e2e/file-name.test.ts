// backends.file.name (issue 27): the day file's name from a template. A
// daemon named "{flavor}-{instance}-{day}.log" writes, seals and compresses
// under that name; replay, rebuild and erase find the files by it; a template
// without {day} is refused at start with one line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { mainJs, startDaemon, tempDir } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const at = (iso: string): number => Date.parse(iso);

function cli(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(...withoutTapHooks(process.execPath, [mainJs, ...args]), { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('"{flavor}-{instance}-{day}.log": written, sealed, compressed under it; replay, rebuild and erase find it', async (t) => {
  const t0 = at('2026-11-29T21:59:50Z'); // 23:59:50 in Athens
  const d = await startDaemon({
    clock: t0,
    config: { instance: 'edge-a', backends: { file: { name: '{flavor}-{instance}-{day}.log', compress: 'gzip', idleCloseMs: 1000 } } },
  });
  t.teardown(() => d.stop());
  await d.setClock(t0);
  for (const q of ['uid=7&a=1', 'uid=8&a=2']) t.equal((await request(d.port, `/track?${q}`, { host: 'gr.test' })).status, 200);
  await d.setClock(at('2026-11-29T22:00:05Z'));
  t.equal((await request(d.port, '/track?a=3', { host: 'gr.test' })).status, 200);
  await d.waitLog((l) => l.msg === 'compressed day' && String(l.file).endsWith('/gr-edge-a-2026-11-29.log.gz'));
  const dir = join(d.dir, 'log', 'gr');
  t.same(readdirSync(dir).sort(), [
    'gr-edge-a-2026-11-29.log.done', 'gr-edge-a-2026-11-29.log.gz', 'gr-edge-a-2026-11-29.log.idx',
    'gr-edge-a-2026-11-30.log', 'gr-edge-a-2026-11-30.log.idx',
  ], 'every file of both days under the template name');
  t.equal(gunzipSync(readFileSync(join(dir, 'gr-edge-a-2026-11-29.log.gz'))).toString(), '{"uid":"7","a":"1"}\n{"uid":"8","a":"2"}\n');
  t.match(JSON.parse(readFileSync(join(dir, 'gr-edge-a-2026-11-29.log.done'), 'utf8')), { instance: 'edge-a', lines: 2 });
  const config = join(d.dir, 'config.json');

  const replay = cli('replay', '--config', config, '--flavor', 'gr', '--from', '2026-11-29T21:00:00Z', '--to', '2026-11-29T23:00:00Z', '--dry-run');
  t.equal(replay.code, 0, replay.err);
  t.match(replay.out, /: 3 Lines .* from 2 day file\(s\)/, 'replay reads both days by the template');

  const out = tempDir('scratchd-instances-rebuild-');
  mkdirSync(join(out, 'gr'));
  writeFileSync(join(out, 'gr', 'gr-edge-a-2026-11-28.log'), '');
  const rebuild = cli('rebuild', '--config', config, '--flavor', 'gr', '--day', '2026-11-28', '--out', out);
  t.equal(rebuild.code, 1);
  t.match(rebuild.err, `${join(out, 'gr', 'gr-edge-a-2026-11-28.log')} exists`, 'rebuild writes under the template name');

  const erase = cli('erase', '--config', config, '--flavor', 'gr', '--field', 'uid', '--value', '7', '--to', '2026-11-29');
  t.equal(erase.code, 0, erase.err);
  t.match(erase.out, 'gr 2026-11-29: 1 of 2 Lines erased');
  t.equal(gunzipSync(readFileSync(join(dir, 'gr-edge-a-2026-11-29.log.gz'))).toString(), '{"uid":"8","a":"2"}\n');
  t.notOk(existsSync(join(d.dir, 'log', 'gr', 'gr-2026-11-29.log')), 'no file under the default name');
  t.equal(await d.stop(), 0);
});

t.test('a template without {day} is refused at start with one line', async (t) => {
  const dir = tempDir('scratchd-instances-name-');
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'UTC' }], stateDir: join(dir, 'state'),
    listen: '127.0.0.1:0', stats: { listen: '127.0.0.1:0' }, backends: { file: { dir: join(dir, 'log'), name: '{flavor}.log' } },
  }));
  const r = cli('--config', config);
  t.equal(r.code, 1);
  t.match(r.err, /\/backends\/file\/name: "\{flavor\}\.log" must hold \{day\} exactly once/);
  t.equal(r.err.trimEnd().split('\n').length, 1, 'one line');
  t.notOk(existsSync(join(dir, 'log')), 'nothing written');
});
