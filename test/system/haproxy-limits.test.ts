// deploy/haproxy.cfg's per-client limit (issue 29), run by Debian's haproxy
// as shipped in front of one scratchd: a client sending 200 hits/s gets 429
// from HAProxy past its 50 a second, and those hits never reach scratchd,
// while another client at 10 hits/s at the same time is untouched.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { root, startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { freePort, poll, sleep, until } from '../helpers/wait.js';
import { grLines, hit } from '../helpers/haproxy.js';

t.setTimeout(120_000);

function haproxyBinary(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v haproxy || ls /usr/sbin/haproxy'], { encoding: 'utf8' }).trim().split('\n')[0]!;
  } catch {
    throw new Error('haproxy is missing: scripts/test-all.sh installs it before the suite');
  }
}

/** deploy/haproxy.cfg with loopback addresses, in the foreground, logging to stderr; nothing else changed. */
function haproxyConfig(front: number, primary: number, backup: number, website: number): string {
  const cfg = readFileSync(join(root, 'deploy/haproxy.cfg'), 'utf8');
  const out = cfg
    .replace(/^global\n(?:\t.*\n|\s*#.*\n)*/m, 'global\n\tlog stderr format raw local0 info\n\n')
    .replace(/^\tbind :80$/m, `\tbind 127.0.0.1:${front}`)
    .replace(/^\tserver primary \S+/m, `\tserver primary 127.0.0.1:${primary}`)
    .replace(/^\tserver backup \S+/m, `\tserver backup 127.0.0.1:${backup}`)
    .replace(/^\tserver www \S+/m, `\tserver www 127.0.0.1:${website}`);
  for (const want of [`bind 127.0.0.1:${front}`, `server primary 127.0.0.1:${primary}`, 'deny deny_status 429']) {
    if (!out.includes(want)) throw new Error(`deploy/haproxy.cfg: "${want}" missing`);
  }
  return out;
}

const get = async (port: number, path: string, agent: http.Agent, localAddress: string): Promise<number> =>
  (await hit(port, path, { agent, localAddress })).status;

/** `rate` hits a second from `address` for `ms`, each on its own schedule (not after the previous answer's pause). */
async function client(front: number, address: string, name: string, rate: number, ms: number): Promise<{ sent: number; status: Map<number, number>; seconds: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const status = new Map<number, number>();
  const pending: Promise<void>[] = [];
  const start = Date.now();
  let sent = 0;
  while (Date.now() - start < ms) {
    const due = start + (sent * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    const id = sent++;
    pending.push(get(front, `/track?client=${name}&id=${id}`, agent, address).then((s) => {
      status.set(s, (status.get(s) ?? 0) + 1);
    }));
  }
  await Promise.all(pending);
  agent.destroy();
  return { sent, status, seconds: (Date.now() - start) / 1000 };
}

const bin = haproxyBinary();
const work = tempDir('scratchd-haproxy-limits-');
const logDir = join(work, 'log');
let scratchd: Daemon;
let haproxy: ChildProcess;
let haproxyLog = '';
let front = 0;

t.before(async () => {
  scratchd = await startDaemon({ config: {
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { ip: 'ip' } }],
    trustedProxies: ['127.0.0.1'], backends: { file: { dir: logDir } },
  } });
  front = await freePort();
  const cfgFile = join(work, 'haproxy.cfg');
  // The backup server is a port nothing listens on: checks mark it down.
  writeFileSync(cfgFile, haproxyConfig(front, scratchd.port, await freePort(), await freePort()));
  execFileSync(bin, ['-c', '-q', '-f', cfgFile]);
  haproxy = spawn(bin, ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.setEncoding('utf8').on('data', (c: string) => { haproxyLog += c; });
  haproxy.stderr!.setEncoding('utf8').on('data', (c: string) => { haproxyLog += c; });
  const probe = new http.Agent();
  const up = await poll('haproxy to serve /track', () => get(front, '/track?client=probe', probe, '127.0.0.4').catch(() => 0),
    (s) => s === 200 || haproxy.exitCode !== null);
  probe.destroy();
  if (up !== 200) throw new Error(`haproxy not serving: ${up} ${haproxyLog}`);
});

t.teardown(async () => {
  haproxy?.kill('SIGKILL');
  await scratchd?.stop('SIGKILL');
});

t.test('200 hits/s from one client: 429 past 50 a second; 10 hits/s from another: all recorded', async (t) => {
  const [fast, slow] = await Promise.all([
    client(front, '127.0.0.2', 'fast', 200, 3000),
    client(front, '127.0.0.3', 'slow', 10, 3000),
  ]);
  const ok = fast.status.get(200) ?? 0;
  const limited = fast.status.get(429) ?? 0;
  t.equal(ok + limited, fast.sent, `the fast client's hits are answered 200 or 429 only (${JSON.stringify([...fast.status])})`);
  t.ok(limited > 0, `the fast client met the limit: ${limited} of ${fast.sent} answered 429`);
  // A sliding one-second window: at most 50 in any second, and 50 in the first.
  t.ok(ok <= 50 * (Math.ceil(fast.seconds) + 1), `the fast client got at most 50 a second through: ${ok} in ${fast.seconds} s`);
  t.ok(ok >= 50, `and its first 50 went through: ${ok}`);
  t.same([...slow.status], [[200, slow.sent]], `the slow client is untouched: ${slow.sent} hits, every one 200`);

  await until('every 200 in scratchd\'s file', () => grLines(logDir).filter((l) => l.client !== 'probe').length >= ok + slow.sent);
  const got = grLines(logDir).filter((l) => l.client !== 'probe');
  t.equal(got.filter((l) => l.client === 'fast').length, ok, 'scratchd recorded exactly the fast client\'s 200s: the 429s never reached it');
  t.equal(got.filter((l) => l.client === 'slow').length, slow.sent, 'and every hit of the slow client');
  t.same(new Set(got.map((l) => l.ip)), new Set(['127.0.0.2', '127.0.0.3']), 'two clients, told apart by their source address');
});
