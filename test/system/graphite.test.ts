// stats.graphite against a real Carbon: Debian's graphite-carbon (carbon-cache)
// writes what scratchd pushes into whisper files, read back with whisper-fetch
// (python3-whisper); both are installed by scripts/test-all.sh. The numbers in
// the whisper files are the ones /stats showed, a flavor named with a dot is
// one node, and a Carbon that dies while scratchd runs costs only samples:
// beacons are answered and written, the drops are counted and logged at most
// once a minute, and samples arrive again once Carbon is back.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startDaemon, tempDir } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { freePort, poll, until } from '../helpers/wait.js';

for (const tool of ['carbon-cache', 'whisper-fetch']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    throw new Error(`${tool} is missing: scripts/test-all.sh installs graphite-carbon and python3-whisper before the suite`);
  }
}

interface Carbon { port: number; storage: string; proc: ChildProcess; kill(): Promise<void> }

/** carbon-cache in the foreground on free loopback ports, keeping every sample (1 s resolution). */
async function startCarbon(dir: string, port?: number): Promise<Carbon> {
  const linePort = port ?? await freePort();
  const [picklePort, queryPort] = [await freePort(), await freePort()];
  const storage = join(dir, 'whisper');
  for (const d of [storage, join(dir, 'log'), join(dir, 'lists')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(dir, 'storage-schemas.conf'), '[all]\npattern = .*\nretentions = 1s:1h\n');
  writeFileSync(join(dir, 'carbon.conf'), [
    '[cache]',
    `STORAGE_DIR = ${dir}`, `LOCAL_DATA_DIR = ${storage}`, `WHITELISTS_DIR = ${join(dir, 'lists')}`,
    `CONF_DIR = ${dir}`, `LOG_DIR = ${join(dir, 'log')}`, `PID_DIR = ${dir}`,
    'ENABLE_LOGROTATION = False', 'USER =', 'MAX_CACHE_SIZE = inf', 'MAX_UPDATES_PER_SECOND = 100000',
    'MAX_CREATES_PER_MINUTE = inf', 'ENABLE_UDP_LISTENER = False', 'CACHE_WRITE_STRATEGY = sorted',
    'LINE_RECEIVER_INTERFACE = 127.0.0.1', `LINE_RECEIVER_PORT = ${linePort}`,
    'PICKLE_RECEIVER_INTERFACE = 127.0.0.1', `PICKLE_RECEIVER_PORT = ${picklePort}`,
    'CACHE_QUERY_INTERFACE = 127.0.0.1', `CACHE_QUERY_PORT = ${queryPort}`, '',
  ].join('\n'));
  const proc = spawn('carbon-cache', [`--config=${join(dir, 'carbon.conf')}`, `--pidfile=${join(dir, 'carbon.pid')}`, '--nodaemon', 'start'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  await until(`carbon-cache listening on ${linePort} (stderr: ${stderr.slice(-500)})`, () => new Promise<boolean>((resolve) => {
    const s = net.connect(linePort, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 60_000);
  return { port: linePort, storage, proc, kill: async () => { proc.kill('SIGKILL'); await exited; } };
}

/** The newest value whisper holds for a metric path, or null. */
function latest(storage: string, path: string): number | null {
  const file = join(storage, ...path.split('.')) + '.wsp';
  if (!existsSync(file)) return null;
  const r = spawnSync('whisper-fetch', ['--json', '--from', String(Math.floor(Date.now() / 1000) - 600), file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const values = (JSON.parse(r.stdout) as { values: (number | null)[] }).values.filter((v): v is number => v !== null);
  return values.length === 0 ? null : values[values.length - 1]!;
}

async function metricValue(port: number, name: string, labels: string): Promise<number> {
  const text = (await request(port, '/metrics')).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('the numbers of /stats land in whisper; a dead Carbon costs only samples', async (t) => {
  const dir = tempDir('scratchd-graphite-');
  let carbon = await startCarbon(join(dir, 'carbon'));
  t.teardown(() => carbon.kill());
  const d = await startDaemon({
    config: {
      stats: { listen: '127.0.0.1:0', graphite: { host: '127.0.0.1', port: carbon.port, prefix: 'scratchd.t', intervalMs: 1000 } },
      flavors: [{ name: 'shop.gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' }],
    },
  });
  t.teardown(() => d.stop());

  for (let i = 0; i < 7; i++) t.equal((await request(d.port, `/track?n=${i}`, { host: 'gr.test' })).status, 200);
  t.equal((await request(d.port, '/track?n=x', { host: 'nowhere.test' })).status, 400);
  const stats = await poll('/stats counts the 7 Lines', async () => JSON.parse((await request(d.statsPort, '/stats')).body.toString()),
    (s) => s.backends.file.persisted === 7);
  t.equal(stats.requests.GET['200'], 7);

  // Whisper holds what /stats showed, under /stats' own keys.
  await poll('whisper has requests.GET.200 = 7', () => latest(carbon.storage, 'scratchd.t.requests.GET.200'), (v) => v === 7, 30_000);
  await poll('whisper has backends.file.persisted = 7', () => latest(carbon.storage, 'scratchd.t.backends.file.persisted'), (v) => v === 7, 30_000);
  await poll('whisper has requests.GET.400 = 1', () => latest(carbon.storage, 'scratchd.t.requests.GET.400'), (v) => v === 1, 30_000);
  // A flavor named with a dot is one node (shop_gr), never two (shop/gr).
  t.equal(stats.file.flavors['shop.gr'].dropped, 0);
  await poll('whisper has file.flavors.shop_gr.dropped', () => latest(carbon.storage, 'scratchd.t.file.flavors.shop_gr.dropped'), (v) => v === 0, 30_000);
  t.notOk(existsSync(join(carbon.storage, 'scratchd', 't', 'file', 'flavors', 'shop')), 'no node split at the flavor name\'s dot');

  // Carbon dies: beacons go on, samples are dropped and counted, one log line says so.
  await carbon.kill();
  const droppedBefore = await metricValue(d.statsPort, 'scratchd_graphite_samples_total', 'result="dropped"');
  for (let i = 0; i < 3; i++) t.equal((await request(d.port, `/track?after=${i}`, { host: 'gr.test' })).status, 200);
  await poll('dropped samples counted', () => metricValue(d.statsPort, 'scratchd_graphite_samples_total', 'result="dropped"'),
    (v) => v >= droppedBefore + 3, 20_000);
  await until('the day file has all 10 Lines', () => {
    const day = new Date().toLocaleDateString('sv-SE', { timeZone: 'Europe/Athens' });
    return dayLines(join(d.dir, 'log'), 'shop.gr', day).length === 10;
  });
  const graphiteWarnings = d.logs.filter((l) => l.component === 'graphite' && (l.level as number) >= 40);
  t.ok(graphiteWarnings.length >= 1, 'the lost Carbon is logged');
  t.ok(graphiteWarnings.length <= 3, `logged rate-limited, not once per sample (${graphiteWarnings.length} lines)`);

  // Carbon back on the same port: samples arrive again, with the new count.
  carbon = await startCarbon(join(dir, 'carbon'), carbon.port);
  await poll('whisper has requests.GET.200 = 10 after Carbon came back', () => latest(carbon.storage, 'scratchd.t.requests.GET.200'), (v) => v === 10, 30_000);
  t.ok(await metricValue(d.statsPort, 'scratchd_graphite_samples_total', 'result="sent"') >= 2, 'sent samples counted');
});

t.test('a Carbon that never answers the connect (no listener) leaves beacons untouched', async (t) => {
  const port = await freePort();
  const d = await startDaemon({ config: { stats: { listen: '127.0.0.1:0', graphite: { host: '127.0.0.1', port, intervalMs: 1000 } } } });
  t.teardown(() => d.stop());
  for (let i = 0; i < 5; i++) t.equal((await request(d.port, `/track?i=${i}`, { host: 'gr.test' })).status, 200);
  await poll('samples dropped', () => metricValue(d.statsPort, 'scratchd_graphite_samples_total', 'result="dropped"'), (v) => v >= 2, 20_000);
  t.equal(await metricValue(d.statsPort, 'scratchd_graphite_samples_total', 'result="sent"'), 0);
});
