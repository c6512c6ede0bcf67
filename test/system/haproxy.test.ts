// deploy/haproxy.cfg, run by Debian's haproxy in front of two scratchd
// instances on loopback (a primary and a backup): failover under steady load
// when the primary is SIGKILLed, failback when it returns, every 200 in
// exactly one instance's files, and the client address through
// X-Forwarded-For from the trusted proxy only.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { root, startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { freePort, poll, sleep, until } from '../helpers/wait.js';
import { grLines, hit, loopbackConfig, serverSessions, type Answer } from '../helpers/haproxy.js';
import { stopProcess } from '../helpers/sigstop.js';

t.setTimeout(240_000);

function haproxyBinary(): string {
  const find = () => {
    try {
      return execFileSync('sh', ['-c', 'command -v haproxy || ls /usr/sbin/haproxy'], { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return '';
    }
  };
  const bin = find();
  if (bin === '') throw new Error('haproxy is missing: scripts/test-all.sh installs it before the suite');
  return bin;
}

/** deploy/haproxy.cfg with loopback addresses, in the foreground, logging to stderr, with an admin socket. */
function haproxyConfig(front: number, primary: number, backup: number, website: number, adminSocket: string): string {
  // The failover load comes from one address far past the per-client limit
  // (loopbackConfig drops it; haproxy-limits.test.ts tests it).
  return loopbackConfig('haproxy.cfg', [
    [/^\tbind :80$/m, `\tbind 127.0.0.1:${front}`],
    [/^\tserver primary \S+/m, `\tserver primary 127.0.0.1:${primary}`],
    [/^\tserver backup \S+/m, `\tserver backup 127.0.0.1:${backup}`],
    [/^\tserver www \S+/m, `\tserver www 127.0.0.1:${website}`],
  ], [`bind 127.0.0.1:${front}`, `server primary 127.0.0.1:${primary}`, `server backup 127.0.0.1:${backup}`], adminSocket);
}

const bin = haproxyBinary();
const work = tempDir('scratchd-haproxy-');
const primaryDir = join(work, 'primary');
const backupDir = join(work, 'backup');
const adminSocket = join(work, 'admin.sock');
const flavors = [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { ip: 'ip' } }];
const common = { flavors, trustedProxies: ['127.0.0.1'] };

let primary: Daemon;
let backup: Daemon;
let haproxy: ChildProcess;
let haproxyLog = '';
let front = 0;

t.before(async () => {
  // An explicit port, not 0: Linux lets a port bound as 0 (auto-selected) be
  // bound again only after the killed process's TIME-WAIT connections
  // expire (60 s), even with SO_REUSEADDR; a configured port rebinds at once.
  primary = await startDaemon({ config: { ...common, listen: `127.0.0.1:${await freePort()}`, backends: { file: { dir: primaryDir } } } });
  backup = await startDaemon({ config: { ...common, backends: { file: { dir: backupDir } } } });
  front = await freePort();
  const cfgFile = join(work, 'haproxy.cfg');
  writeFileSync(cfgFile, haproxyConfig(front, primary.port, backup.port, await freePort(), adminSocket));
  execFileSync(bin, ['-c', '-q', '-f', cfgFile]);
  haproxy = spawn(bin, ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.setEncoding('utf8').on('data', (c: string) => {
    haproxyLog += c;
  });
  haproxy.stderr!.setEncoding('utf8').on('data', (c: string) => {
    haproxyLog += c;
  });
  // Up when a beacon through it is answered.
  const up = await poll('haproxy to serve /health', () => hit(front, '/health').catch((e: Error) => ({ status: 0, body: e.message })),
    (r) => r.status === 200 || haproxy.exitCode !== null);
  if (up.status !== 200) throw new Error(`haproxy not serving: ${JSON.stringify(up)} ${haproxyLog}`);
});

t.teardown(async () => {
  haproxy?.kill('SIGKILL');
  await Promise.all([primary?.stop('SIGKILL'), backup?.stop('SIGKILL')]);
  rmSync(work, { recursive: true, force: true });
});

t.test('the example config passes haproxy -c as it is', async (t) => {
  // Throws (and fails the test) unless haproxy exits 0.
  execFileSync(bin, ['-c', '-q', '-f', join(root, 'deploy/haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.pass('haproxy -c: valid');
});

t.test('health checks: HTTP/1.1 with Host, both servers up', async (t) => {
  // A HTTP/1.0 check (haproxy's default) would get 505 from uWS.
  t.equal((await hit(front, '/health')).body, 'ok\n', '/health through haproxy');
  t.equal((await hit(front, '/nothing-here')).status, 503, 'other paths go to the website backend (down here)');
  t.notMatch(haproxyLog, /scratchd\/(primary|backup) is DOWN/, 'no server went down');
});

t.test('the shipped config: a server queue that works, whole requests to scratchd', async (t) => {
  const cfg = readFileSync(join(root, 'deploy/haproxy.cfg'), 'utf8');
  // "timeout queue" only applies to requests queued at a server's maxconn.
  t.match(cfg, /^\tdefault-server .* maxconn \d+/m, 'every scratchd server has a maxconn');
  t.match(cfg, /^\ttimeout queue \S+/m, '… and a queue timeout');
  t.match(cfg, /^\toption http-buffer-request$/m, 'a request reaches scratchd once complete');
});

/** How long the slow beacon is held at the stopped primary. */
const SLOW_MS = 400;

t.test('logging: beacons answered normally are not logged; a slow one is, without its query and with a masked address', async (t) => {
  const marker = `q${process.pid}x`;
  for (let i = 0; i < 20; i++) t.equal((await hit(front, `/track?secret=${marker}&n=${i}`)).status, 200);
  // A slow answer: the primary stopped while it holds the request. Each step
  // waits for what it needs rather than for a time: a SIGSTOP takes effect
  // only when the primary next runs (its serving threads answer until then),
  // and on a loaded machine the request may take a while through HAProxy.
  await stopProcess(primary.proc);
  const handed = await serverSessions(adminSocket, 'scratchd', 'primary');
  const slow = hit(front, `/track?secret=${marker}&slow=1`);
  await until('HAProxy to hand the slow beacon to the primary', async () => await serverSessions(adminSocket, 'scratchd', 'primary') > handed, 10_000);
  // Then it stays with the stopped primary for longer than the 250 ms the
  // line's server time is checked against below.
  await sleep(SLOW_MS);
  primary.proc.kill('SIGCONT');
  t.equal((await slow).status, 200, 'the slow beacon is answered');
  await until('the slow beacon logged', () => haproxyLog.includes('"GET /track HTTP/1.1"'), 10_000);
  await sleep(200);
  // Only answers that took 100 ms or more are logged: the slow one, and on a
  // loaded machine perhaps a normal one that happened to be slow; never most of them.
  const beaconLines = haproxyLog.split('\n').filter((l) => l.includes('/track'));
  t.ok(beaconLines.length >= 1 && beaconLines.length <= 3, `the slow beacon's line, not the others': ${beaconLines.join('\n')}`);
  for (const l of beaconLines) {
    t.match(l, /^127\.0\.0\.0 \[.*\] www scratchd\/primary \d+\/\d+\/\d+\/([1-9]\d{2,})\/\d+ 200 /, 'client address masked to its /24; server time ≥ 100 ms; 200');
  }
  t.ok(beaconLines.some((l) => Number(/ \d+\/\d+\/\d+\/(\d+)\//.exec(l)?.[1]) >= 250), 'the stopped one among them');
  t.notMatch(haproxyLog, new RegExp(marker), 'no query string in any log line');
});

t.test('no server banner: uWebSockets\' own header is removed on the way out (#28.3)', async (t) => {
  // uWebSockets.js writes "uWebSockets: 20" into every answer (compiled in, no run-time switch).
  t.equal((await hit(primary.port, '/track?banner=direct')).headers?.uwebsockets, '20', 'scratchd itself sends it');
  for (const path of ['/track?banner=via', '/health']) {
    const a = await hit(front, path);
    t.equal(a.headers?.uwebsockets, undefined, `not through HAProxy: ${path} (${a.status})`);
  }
});

t.test('client IP: X-Forwarded-For from the trusted proxy only', async (t) => {
  const before = grLines(primaryDir).length;
  // Through haproxy from 127.0.0.2, with a forged header haproxy passes on
  // before its own: scratchd takes the address haproxy appended.
  const via = await hit(front, '/track?ipcheck=via', { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '203.0.113.9' } });
  t.equal(via.status, 200);
  // Directly from an untrusted peer (127.0.0.3) with a forged header.
  const direct = await hit(primary.port, '/track?ipcheck=direct', { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': '203.0.113.9' } });
  t.equal(direct.status, 200);
  await until('both Lines in the primary\'s file', () => grLines(primaryDir).length >= before + 2);
  const got = Object.fromEntries(grLines(primaryDir).filter((l) => l.ipcheck !== undefined).map((l) => [l.ipcheck, l.ip]));
  t.same(got, { via: '127.0.0.2', direct: '127.0.0.3' });
});

t.test('failover to the backup on SIGKILL, failback when the primary returns', async (t) => {
  const CLIENTS = 4;
  const PAUSE_MS = 2; // per client between requests: about 1-1.5k requests/s in all
  const results = new Map<number, Answer | Error>();
  const answeredAt = new Map<number, number>();
  let next = 0;
  let running = true;
  const agents = Array.from({ length: CLIENTS }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const client = async (agent: http.Agent) => {
    while (running) {
      const id = next++;
      try {
        results.set(id, await hit(front, `/track?id=${id}`, { agent }));
        answeredAt.set(id, Date.now());
      } catch (e) {
        results.set(id, e as Error);
      }
      await sleep(PAUSE_MS);
    }
  };
  const load = Promise.all(agents.map(client));
  // Each phase lasts until enough traffic went where it should, not a fixed
  // time: on a loaded machine the same time carries far fewer requests.
  const answered = (): number => [...results.values()].filter((r) => !(r instanceof Error) && r.status === 200).length;
  const more = async (what: string, n: number): Promise<void> => {
    const from = answered();
    await until(`${n} more answers (${what})`, () => answered() >= from + n, 60_000);
  };

  await more('the primary serving', 1000);
  const beforeKill = grLines(primaryDir).length;
  t.ok(beforeKill > 100, `primary serves (${beforeKill} lines)`);
  t.equal(grLines(backupDir).length, 0, 'backup idle while the primary is up');

  const killedAt = Date.now();
  const idAtKill = next;
  primary.proc.kill('SIGKILL');
  await primary.exited;
  await until('the backup to take over', () => grLines(backupDir).length > 100, 30_000);
  const failoverMs = Date.now() - killedAt;
  await more('the backup serving', 1000);

  const restartedAt = Date.now();
  const idAtRestart = next;
  const primaryLinesAtRestart = grLines(primaryDir).length;
  primary = await startDaemon({ config: { ...common, listen: `127.0.0.1:${primary.port}`, backends: { file: { dir: primaryDir } } } });
  await until('the primary to take traffic back', () => grLines(primaryDir).length > primaryLinesAtRestart + 100, 30_000);
  const failbackMs = Date.now() - restartedAt;
  await more('the primary serving again', 700);
  const backupAtEnd = grLines(backupDir).length;
  await more('after failback', 300);
  running = false;
  await load;
  for (const a of agents) a.destroy();
  const idAtEnd = next;

  // Drain both: every Line they took is written (SIGTERM contract).
  t.equal(await primary.stop('SIGTERM'), 0);
  t.equal(await backup.stop('SIGTERM'), 0);

  const ok = [...results].filter(([, r]) => !(r instanceof Error) && r.status === 200).map(([id]) => id);
  const failed = [...results].filter(([, r]) => r instanceof Error || r.status !== 200);
  const pIds = grLines(primaryDir).filter((l) => l.id !== undefined).map((l) => Number(l.id));
  const bIds = grLines(backupDir).filter((l) => l.id !== undefined).map((l) => Number(l.id));
  const count = (ids: number[]) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<number, number>());
  const pc = count(pIds);
  const bc = count(bIds);
  const okSet = new Set(ok);
  const missing = ok.filter((id) => !pc.has(id) && !bc.has(id));
  const inBoth = ok.filter((id) => pc.has(id) && bc.has(id));
  const twiceInOne = [...pc, ...bc].filter(([, n]) => n > 1).map(([id]) => id);
  const persistedButFailed = failed.filter(([id]) => pc.has(id) || bc.has(id)).map(([id]) => id);
  const unknown = [...pc.keys(), ...bc.keys()].filter((id) => !results.has(id));
  const backupAfterFailback = bIds.filter((id) => id >= idAtRestart + 0).length;

  const summary = {
    requests: results.size, ok: ok.length, failed: failed.length,
    failures: failed.slice(0, 10).map(([id, r]) => `${id}: ${r instanceof Error ? r.message : `${r.status} ${r.body.slice(0, 80)}`}`),
    missing: missing.length, missingIds: missing.slice(0, 10), missingAnsweredMsBeforeKill: missing.slice(0, 10).map((id) => killedAt - answeredAt.get(id)!), inBoth: inBoth.length, twiceInOne: twiceInOne.length, persistedButFailed: persistedButFailed.length,
    failoverMs, failbackMs, primaryLines: pIds.length, backupLines: bIds.length, idAtKill, idAtRestart, idAtEnd,
    backupLinesAfterRestart: backupAfterFailback, backupAtEnd,
  };
  t.comment(`failover: ${JSON.stringify(summary)}`);
  t.comment(haproxyLog.split('\n').filter((l) => /is (DOWN|UP)/.test(l) && !l.startsWith('[')).join('\n'));
  // What haproxy logged of the beacons (only errors, retries, redispatches
  // and slow answers, without their query): termination state, retries
  // ("N" in the last field of actconn/feconn/beconn/srv_conn/retries) or
  // redispatches ("+N").
  const logged = haproxyLog.split('\n').filter((l) => l.includes('"GET /track '));
  t.comment(`haproxy logged ${logged.length} beacons:\n${logged.slice(0, 12).join('\n')}`);

  t.equal(results.size, idAtEnd, 'every request finished');
  t.ok(results.size > 3000, `steady load: ${results.size} requests`);
  // Retries + redispatch hide the kill from clients: measured 0 failures in
  // quiet runs, 1 ("socket hang up") in one of two runs next to a package
  // build. Only a request in flight to the primary when it died can fail.
  t.ok(failed.length <= CLIENTS, `client-visible failures: ${failed.length} (at most the ${CLIENTS} in flight)`);
  t.same(failed.map(([id]) => id).filter((id) => Math.abs(id - idAtKill) > 2 * CLIENTS), [], 'failures only around the kill');
  // A 200 whose Line was still queued in the primary when SIGKILL landed is
  // lost: the queue is memory, the answer never waits for the disk, and the
  // file backend gathers Lines for a few ms (COALESCE_MS) per write; only
  // SIGTERM drains it. So only Lines answered just before the kill may be
  // missing. Measured with 20 ms batches: 0-23 per run at ~1k req/s, all
  // answered within 20 ms of the kill.
  const lostEarly = missing.filter((id) => killedAt - answeredAt.get(id)! > 500);
  t.same(lostEarly, [], `every 200 is in one of the two files, but ${missing.length} answered in the last 500 ms before the SIGKILL`);
  t.same(inBoth, [], 'no 200 in both files');
  t.same(twiceInOne, [], 'no Line twice in one file');
  t.same(unknown, [], 'no Line for a request that was never sent');
  t.same(persistedButFailed, [], 'no Line for a failed request');
  t.ok(okSet.size === ok.length, 'ids unique');
  // Bounds for a loaded CI machine; a quiet one stays far inside them.
  t.ok(failoverMs < 15_000, `failover within ${failoverMs} ms`);
  t.ok(failbackMs < 30_000, `failback within ${failbackMs} ms`);
  t.ok(grLines(backupDir).length - backupAtEnd <= CLIENTS * 2, 'after failback the backup takes (almost) nothing');
});
