// The instance name (issue 27): config `instance`, default the host name, in
// a sealed day's manifest, /stats and /metrics; an unsafe name is refused.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { mainJs, startDaemon, tempDir } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const at = (iso: string) => Date.parse(iso);
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

async function statsOf(port: number): Promise<Record<string, unknown>> {
  return JSON.parse((await request(port, '/stats')).body.toString()) as Record<string, unknown>;
}

t.test('instance in the sealed manifest, /stats and scratchd_build_info', async (t) => {
  const t0 = at('2026-11-29T21:59:50Z');
  const d = await startDaemon({ clock: t0, config: { instance: 'edge-a', backends: { file: { idleCloseMs: 1000 } } } });
  t.teardown(() => d.stop());
  await d.setClock(t0);
  t.equal((await request(d.port, '/track?a=1', { host: 'gr.test' })).status, 200);
  // Athens' midnight seals gr's 29th.
  await d.setClock(at('2026-11-29T22:00:05Z'));
  t.equal((await request(d.port, '/track?a=2', { host: 'gr.test' })).status, 200);
  await d.waitLog((l) => l.msg === 'sealed day' && String(l.file).endsWith('/gr-2026-11-29.log'));
  const manifest = JSON.parse(readFileSync(join(d.dir, 'log', 'gr', 'gr-2026-11-29.log.done'), 'utf8')) as Record<string, unknown>;
  t.match(manifest, { flavor: 'gr', day: '2026-11-29', instance: 'edge-a', lines: 1 }, 'the manifest names the instance');

  t.equal((await statsOf(d.statsPort)).instance, 'edge-a', '/stats: top-level instance');
  const metrics = (await request(d.statsPort, '/metrics')).body.toString();
  t.ok(metrics.includes(`scratchd_build_info{version="${version}",instance="edge-a"} 1\n`), '/metrics: scratchd_build_info with version and instance');
  t.equal(await d.stop(), 0);
});

t.test('no instance in the config: the host name', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  t.equal((await statsOf(d.statsPort)).instance, hostname());
  t.equal(await d.stop(), 0);
});

t.test('an instance name that is no safe token is refused at start', async (t) => {
  for (const bad of ['../x', 'a b', '.hidden', 'a/b', '']) {
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, JSON.stringify({ instance: bad, flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'UTC' }] }));
    const r = spawnSync(...withoutTapHooks(process.execPath, [mainJs, '--config', file, '--check']), { encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 1, `${JSON.stringify(bad)}: exit 1`);
    t.match(r.stderr, /\/instance: must match pattern/, `${JSON.stringify(bad)}: the error names /instance`);
  }
});
