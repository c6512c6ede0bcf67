// deploy/haproxy-rollout.cfg (issue 27), run by Debian's haproxy with a
// stand-in legacy application (weight 90) and one scratchd (weight 10): the
// share of hits reaching scratchd is its weight's, and a weight moved on the
// admin socket moves it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { admin, haproxyBin, getStatus, loopbackConfig } from '../helpers/haproxy.js';
import { root, startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { stats } from '../helpers/kafka-daemon.js';
import { freePort, poll } from '../helpers/wait.js';

t.setTimeout(180_000);

const bin = haproxyBin();

/** deploy/haproxy-rollout.cfg with loopback addresses, in the foreground, logging to stderr. */
function haproxyConfig(front: number, legacy: number, scratchd: number, website: number, admin: string): string {
  return loopbackConfig('haproxy-rollout.cfg', [
    [/^\tbind :80$/m, `\tbind 127.0.0.1:${front}`],
    [/^\tserver legacy \S+/m, `\tserver legacy 127.0.0.1:${legacy}`],
    [/^\tserver scratchd \S+/m, `\tserver scratchd 127.0.0.1:${scratchd}`],
    [/^\tserver www \S+/m, `\tserver www 127.0.0.1:${website}`],
  ], [`bind 127.0.0.1:${front}`, `server legacy 127.0.0.1:${legacy} weight 90`, `server scratchd 127.0.0.1:${scratchd} weight 10`], admin);
}

const get = getStatus;

const work = tempDir('scratchd-instances-rollout-');
let haproxy: ChildProcess | undefined;
let haproxyLog = '';
let d: Daemon | undefined;
/** The stand-in legacy application: answers everything 200, counts /track. */
let legacyHits = 0;
const legacy = http.createServer((req, res) => {
  if (req.url?.startsWith('/track')) legacyHits++;
  res.end('ok\n');
});

t.teardown(async () => {
  haproxy?.kill('SIGKILL');
  legacy.close();
  await d?.stop('SIGKILL');
});

/** `hits` /track requests through HAProxy; how many of them scratchd wrote. */
async function share(front: number, hits: number): Promise<{ scratchd: number; legacy: number }> {
  const before = { scratchd: (await stats(d!)).backends.file.persisted as number, legacy: legacyHits };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const statuses = await Promise.all(Array.from({ length: hits }, (_, i) => get(front, `/track?id=${i}`, agent)));
  agent.destroy();
  if (statuses.some((s) => s !== 200)) throw new Error(`not all 200: ${statuses.filter((s) => s !== 200).length}`);
  // Persisted is counted once the file write returns: wait for the last ones.
  let now = before.scratchd;
  for (let i = 0; i < 50 && now - before.scratchd + legacyHits - before.legacy < hits; i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = (await stats(d!)).backends.file.persisted as number;
  }
  return { scratchd: now - before.scratchd, legacy: legacyHits - before.legacy };
}

t.test('the shipped file passes haproxy -c as it is', async (t) => {
  execFileSync(bin, ['-c', '-q', '-f', join(root, 'deploy/haproxy-rollout.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.pass('haproxy -c: valid');
});

t.test('weight 90 / 10: scratchd gets a tenth of the hits; 50 / 50 on the admin socket: half', async (t) => {
  d = await startDaemon({ config: { flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' }], trustedProxies: ['127.0.0.1'] } });
  const legacyPort = await freePort();
  await new Promise<void>((r) => legacy.listen(legacyPort, '127.0.0.1', r));
  const front = await freePort();
  const socket = join(work, 'admin.sock');
  const cfgFile = join(work, 'haproxy.cfg');
  writeFileSync(cfgFile, haproxyConfig(front, legacyPort, d.port, await freePort(), socket));
  execFileSync(bin, ['-c', '-q', '-f', cfgFile]);
  haproxy = spawn(bin, ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.setEncoding('utf8').on('data', (c: string) => { haproxyLog += c; });
  haproxy.stderr!.setEncoding('utf8').on('data', (c: string) => { haproxyLog += c; });
  const up = await poll('haproxy to serve', () => get(front, '/health').catch(() => 0), (s) => s === 200 || haproxy!.exitCode !== null);
  t.equal(up, 200, `haproxy serves ${haproxy.exitCode === null ? '' : haproxyLog}`);

  const N = 1000;
  // Smooth weighted round robin: exactly its share per cycle of 100; 2 % either way allows for the checks' timing.
  const first = await share(front, N);
  t.equal(first.scratchd + first.legacy, N, `every hit went to one of the two (${first.scratchd} + ${first.legacy})`);
  t.ok(Math.abs(first.scratchd - 0.1 * N) <= 0.02 * N, `weight 10 of 100: scratchd took ${first.scratchd} of ${N}`);

  await admin(socket, 'set weight scratchd/legacy 50');
  await admin(socket, 'set weight scratchd/scratchd 50');
  // HAProxy's round robin evens out the turns owed under the old weights first: measure after that.
  await share(front, N);
  const second = await share(front, N);
  t.equal(second.scratchd + second.legacy, N);
  t.ok(Math.abs(second.scratchd - 0.5 * N) <= 0.02 * N, `weight 50 of 100: scratchd took ${second.scratchd} of ${N}`);
  t.notMatch(haproxyLog, /scratchd\/(legacy|scratchd) is DOWN/, 'no server went down');
});
