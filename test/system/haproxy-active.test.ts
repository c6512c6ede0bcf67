// deploy/haproxy-active.cfg (issue 27), run by Debian's haproxy in front of
// two active scratchd instances on loopback, each naming its day files with
// its instance: the traffic is shared, and every answered Line is in exactly
// one of the two instances' files, once; one instance drained on the runtime
// API under load, stopped and started again: no failed request, every Line
// once.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { admin, haproxyBin, getStatus, loopbackConfig } from '../helpers/haproxy.js';
import { root, startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { freePort, poll, sleep } from '../helpers/wait.js';
import { stats, traffic } from '../helpers/kafka-daemon.js';

t.setTimeout(180_000);

const bin = haproxyBin();

/** deploy/haproxy-active.cfg with loopback addresses, in the foreground, logging to stderr. */
function haproxyConfig(front: number, a: number, b: number, website: number, admin?: string): string {
  return loopbackConfig('haproxy-active.cfg', [
    [/^\tbind :80$/m, `\tbind 127.0.0.1:${front}`],
    [/^\tserver a \S+/m, `\tserver a 127.0.0.1:${a}`],
    [/^\tserver b \S+/m, `\tserver b 127.0.0.1:${b}`],
    [/^\tserver www \S+/m, `\tserver www 127.0.0.1:${website}`],
  ], [`bind 127.0.0.1:${front}`, `server a 127.0.0.1:${a}`, `server b 127.0.0.1:${b}`], admin);
}

const get = getStatus;

const work = tempDir('scratchd-instances-haproxy-');
const flavors = [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' }];
const daemons: Daemon[] = [];
let haproxy: ChildProcess | undefined;
let haproxyLog = '';

t.teardown(async () => {
  haproxy?.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
});

t.test('the shipped file passes haproxy -c as it is', async (t) => {
  execFileSync(bin, ['-c', '-q', '-f', join(root, 'deploy/haproxy-active.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.pass('haproxy -c: valid');
});

t.test('two active instances share the traffic; every Line once, in the files of the instance that answered', async (t) => {
  for (const instance of ['a', 'b']) {
    daemons.push(await startDaemon({ config: {
      instance, flavors, trustedProxies: ['127.0.0.1'],
      backends: { file: { dir: join(work, instance), name: '{flavor}-{instance}-{day}.log' } },
    } }));
  }
  const front = await freePort();
  const cfgFile = join(work, 'haproxy.cfg');
  writeFileSync(cfgFile, haproxyConfig(front, daemons[0]!.port, daemons[1]!.port, await freePort()));
  execFileSync(bin, ['-c', '-q', '-f', cfgFile]);
  haproxy = spawn(bin, ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.setEncoding('utf8').on('data', (c: string) => { haproxyLog += c; });
  haproxy.stderr!.setEncoding('utf8').on('data', (c: string) => { haproxyLog += c; });
  const up = await poll('haproxy to serve /health', () => get(front, '/health').catch(() => 0), (s) => s === 200 || haproxy!.exitCode !== null);
  t.equal(up, 200, `haproxy serves /health ${haproxy.exitCode === null ? '' : haproxyLog}`);

  const N = 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const statuses = await Promise.all(Array.from({ length: N }, (_, i) => get(front, `/track?id=${i}`, agent)));
  agent.destroy();
  t.same(statuses.filter((s) => s !== 200), [], `all ${N} answered 200`);
  t.notMatch(haproxyLog, /scratchd\/[ab] is DOWN/, 'no server went down');
  for (const d of daemons) t.equal(await d.stop(), 0);

  const ids = new Map<string, number>();
  const share: Record<string, number> = {};
  for (const instance of ['a', 'b']) {
    const files = readdirSync(join(work, instance, 'gr'));
    t.ok(files.length > 0 && files.every((f) => f.startsWith(`gr-${instance}-`)), `${instance}: every file named with its instance (${files.join(' ')})`);
    share[instance] = 0;
    for (const f of files.filter((x) => x.endsWith('.log'))) {
      for (const l of readFileSync(join(work, instance, 'gr', f), 'utf8').split('\n').filter((x) => x !== '')) {
        const id = (JSON.parse(l) as { id: string }).id;
        ids.set(id, (ids.get(id) ?? 0) + 1);
        share[instance]!++;
      }
    }
  }
  t.equal(ids.size, N, 'every Line in the union of the two instances');
  t.same([...ids.values()].filter((n) => n !== 1), [], 'none twice');
  // Round robin over two servers: half each, give or take what the retries moved.
  for (const instance of ['a', 'b']) t.ok(share[instance]! >= 0.4 * N, `${instance} took ${share[instance]} of ${N}`);
});

t.test('drain one instance on the runtime API under load, stop it, start it again: no failed request, every Line once', async (t) => {
  const dir = join(work, 'drain');
  mkdirSync(dir);
  const ports = { a: await freePort(), b: await freePort() };
  const start = (instance: 'a' | 'b') => startDaemon({ config: {
    instance, flavors, trustedProxies: ['127.0.0.1'], listen: `127.0.0.1:${ports[instance]}`,
    backends: { file: { dir: join(dir, instance), name: '{flavor}-{instance}-{day}.log' } },
  } });
  const a1 = await start('a');
  const b = await start('b');
  daemons.push(a1, b);
  const front = await freePort();
  const socket = join(dir, 'admin.sock');
  const cfgFile = join(dir, 'haproxy.cfg');
  writeFileSync(cfgFile, haproxyConfig(front, ports.a, ports.b, await freePort(), socket));
  const proxy = spawn(bin, ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proxy.stderr!.setEncoding('utf8').on('data', (c: string) => { log += c; });
  t.teardown(() => { proxy.kill('SIGKILL'); });
  const up = await poll('haproxy to serve /health', () => get(front, '/health').catch(() => 0), (s) => s === 200 || proxy.exitCode !== null);
  t.equal(up, 200, `haproxy serves /health ${log}`);

  // The load: keep-alive clients through HAProxy (traffic() speaks to d.port).
  const load = traffic({ port: front } as Daemon, 'gr.test', 4, 2);
  await sleep(1000);
  t.match(await admin(socket, 'set server scratchd/a state drain'), /^\s*$/, 'drain accepted');
  await sleep(500);
  t.equal(await a1.stop(), 0, 'a stopped (SIGTERM) after the drain');
  await sleep(500);
  const a2 = await start('a');
  daemons.push(a2);
  t.match(await admin(socket, 'set server scratchd/a state ready'), /^\s*$/, 'ready accepted');
  await poll('a to take traffic again', () => admin(socket, 'show servers state scratchd'), (s) => / a 127\.0\.0\.1 2 /.test(s), 20_000);
  await sleep(1000);
  const { ok, bad } = await load.stop();
  t.ok((await stats(a2)).backends.file.persisted > 0, 'a took traffic again after its restart');
  t.same(bad, [], `no failed request of ${ok.length}`);
  for (const d of [a2, b]) t.equal(await d.stop(), 0);

  const seen = new Map<string, number>();
  for (const instance of ['a', 'b']) {
    for (const f of readdirSync(join(dir, instance, 'gr')).filter((x) => x.endsWith('.log'))) {
      for (const l of readFileSync(join(dir, instance, 'gr', f), 'utf8').split('\n').filter((x) => x !== '')) {
        const id = (JSON.parse(l) as { id: string }).id;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
    }
  }
  t.same(ok.filter((id) => !seen.has(id)), [], 'every answered Line in the files');
  t.same([...seen].filter(([, n]) => n !== 1), [], 'none twice');
  t.equal(seen.size, ok.length, 'and none that was not answered');
});
