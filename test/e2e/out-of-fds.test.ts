// Out of file descriptors (a low RLIMIT_NOFILE, connections held open): every
// listener backs off instead of spinning, and sd_notify still gets through.
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  daemonConfig, fdCount, holdSocket, Http1Connection, mainJs, oneShot, type Generation,
} from '../helpers/socket-activation.js';
import { poll, sleep, until } from '../helpers/wait.js';

const FD_LIMIT = 64;

/** utime + stime of `pid`, in clock ticks. */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** `count` connections to `port`, each completed by the kernel whether or not it is accepted. */
async function hold(port: number, count: number): Promise<Http1Connection[]> {
  const held: Http1Connection[] = [];
  for (let i = 0; i < count; i++) {
    const c = new Http1Connection(port);
    await c.ready;
    held.push(c);
  }
  return held;
}

/** The low fd limit is set in the exec chain, so LISTEN_PID still names node. */
const limited = (config: string): string[] =>
  ['/bin/sh', '-c', `ulimit -n ${FD_LIMIT}; exec "${process.execPath}" "${mainJs}" --config "${config}"`];

const logged = (gen: Generation, msg: string) => gen.logs().find((l) => l.msg === msg);

t.test('listening on ports of its own, out of fds: neither listener spins', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({});
  const gen = await sock.start(limited(cfg.file), { plain: true });
  await until('the "serving" log line', () => logged(gen, 'serving') !== undefined);
  const port = Number(String(logged(gen, 'serving')!.listen).split(':').pop());
  const statsPort = Number(logged(gen, 'stats listener ready')!.port);

  const held = await hold(port, 80);
  await poll(`the daemon's fds to reach ${FD_LIMIT}`, () => fdCount(gen.pid), (n) => n >= FD_LIMIT);
  // One connection on each listener waits in its backlog: both sockets stay readable.
  const waiting = [new Http1Connection(statsPort), new Http1Connection(port)];
  await Promise.all(waiting.map((c) => c.ready));
  await sleep(200);
  const c0 = cpuTicks(gen.pid);
  await sleep(2000);
  const ticks = cpuTicks(gen.pid) - c0;
  t.ok(ticks < 40, `not spinning while out of fds (${ticks} ticks of CPU in 2 s)`);
  await until('EMFILE logged', () => gen.logs().some((l) => l.msg === 'accept failed; backing off' && JSON.stringify(l).includes('EMFILE')));

  for (const c of held) c.destroy();
  const health = await waiting[0]!.request('/health');
  t.equal(health.status, 200, 'the waiting stats connection is served once fds are free');
  t.equal((await waiting[1]!.request('/track?id=waited')).status, 200, 'so is the waiting public one');
  t.equal((await oneShot(port, '/track?id=after')).status, 200);
  for (const c of waiting) c.destroy();
  t.equal(await gen.stop(), 0);
});

t.test('out of fds, sd_notify still gets through: SIGHUP is RELOADING=1 then READY=1, SIGTERM STOPPING=1', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({});
  const gen = await sock.start(limited(cfg.file));
  await gen.waitNotify('READY=1');
  const held = await hold(sock.port, 80);
  await until('the daemon to run out of fds', () => logged(gen, 'accept failed; backing off') !== undefined);

  process.kill(gen.pid, 'SIGHUP');
  await gen.waitNotify('RELOADING=1', 10_000);
  await until('a second READY=1', () => gen.notified.filter((s) => s === 'READY=1').length === 2, 10_000);
  t.pass('RELOADING=1 then READY=1');
  process.kill(gen.pid, 'SIGTERM');
  await gen.waitNotify('STOPPING=1', 10_000);
  t.pass('STOPPING=1');
  t.equal(logged(gen, 'sd_notify failed'), undefined, 'no send failed');
  for (const c of held) c.destroy();
  t.equal(await gen.exited, 0);
});
