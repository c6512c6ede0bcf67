// Socket activation: the LISTEN_* rules, the addon, and the daemon serving on
// a socket it inherited (keep-alive, pipelining, no fd leak, EMFILE back-off).
import { openSync, closeSync, readFileSync } from 'node:fs';
import t from 'tap';
import { acceptInto, inheritedSockets, notify, openNotify } from '../../src/http/activation.js';
import { makeLogger } from '../../src/log.js';
import {
  daemonConfig, fdCount, holdSocket, Http1Connection, mainJs, oneShot, persisted, type Activator, type Generation,
} from '../helpers/socket-activation.js';
import { poll, sleep, until } from '../helpers/wait.js';

const me = String(process.pid);

t.test('inheritedSockets follows sd_listen_fds(3)', async (t) => {
  const none = { serve: [], unused: [] };
  const cases: [string, NodeJS.ProcessEnv, { serve: number[]; unused: number[] }][] = [
    ['nothing passed', {}, none],
    ['fd 3 for us', { LISTEN_PID: me, LISTEN_FDS: '1' }, { serve: [3], unused: [] }],
    ['no LISTEN_PID', { LISTEN_FDS: '1' }, none],
    ['no LISTEN_FDS', { LISTEN_PID: me }, none],
    ['zero fds', { LISTEN_PID: me, LISTEN_FDS: '0' }, none],
    ['garbage count', { LISTEN_PID: me, LISTEN_FDS: '1x' }, none],
    ['named http picks its fd, the others are closed', { LISTEN_PID: me, LISTEN_FDS: '3', LISTEN_FDNAMES: 'stats:other:http' },
      { serve: [5], unused: [3, 4] }],
    ['every fd named http', { LISTEN_PID: me, LISTEN_FDS: '3', LISTEN_FDNAMES: 'http:stats:http' }, { serve: [3, 5], unused: [4] }],
    ['name beyond the count is ignored', { LISTEN_PID: me, LISTEN_FDS: '1', LISTEN_FDNAMES: 'stats:http' }, { serve: [3], unused: [] }],
    ['no http: the fds named like fd 3 (one unit, two ListenStream=)',
      { LISTEN_PID: me, LISTEN_FDS: '3', LISTEN_FDNAMES: 'scratchd.socket:scratchd.socket:x' }, { serve: [3, 4], unused: [5] }],
    ['no names: every fd', { LISTEN_PID: me, LISTEN_FDS: '2' }, { serve: [3, 4], unused: [] }],
    ['meant for another process, fd 3 no socket', { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' }, none],
    ['garbage pid, fd 3 no socket', { LISTEN_PID: ` ${me}`, LISTEN_FDS: '1' }, none],
  ];
  for (const [name, env, want] of cases) {
    const e = { ...env, PATH: '/bin' };
    t.same(inheritedSockets(e, () => false), want, name);
    t.same(Object.keys(e), ['PATH'], `${name}: LISTEN_* cleared`);
  }
  // A wrapper forked scratchd instead of exec'ing: the sockets came along.
  const e = { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1', PATH: '/bin' };
  t.throws(() => inheritedSockets(e, (fd) => fd === 3), /LISTEN_PID=\d+ is not this process/, 'another pid, fd 3 a socket: refused');
  t.same(Object.keys(e), ['PATH'], 'LISTEN_* cleared');
});

t.test('acceptInto refuses an fd that is not a listening socket', async (t) => {
  const fake = { adoptSocket() {} } as unknown as Parameters<typeof acceptInto>[0];
  const fd = openSync('/dev/null', 'r');
  try {
    t.throws(() => acceptInto(fake, fd), /not a listening stream socket/);
  } finally {
    closeSync(fd);
  }
});

t.test('notify is a no-op without NOTIFY_SOCKET, and a failed send is logged', async (t) => {
  const lines: string[] = [];
  const log = makeLogger('info');
  (log as unknown as { error(o: object, m: string): void }).error = (o, m) => lines.push(`${m} ${JSON.stringify(o)}`);
  t.equal(openNotify({}), null);
  t.equal(notify(log, 'READY=1'), false, 'nothing sent');
  t.same(lines, [], 'nothing logged');
  t.equal(openNotify({ NOTIFY_SOCKET: '@scratchd-test-nobody-listens' }), null, 'opened');
  t.equal(notify(log, 'READY=1'), false, 'not delivered');
  t.match(lines, [/^sd_notify failed .*"state":"READY=1".*"err":"ECONNREFUSED"/], 'logged, never thrown');
  t.equal(openNotify({ NOTIFY_SOCKET: 'relative' }), 'EINVAL');
});

t.test('the daemon serves on the inherited socket', async (t) => {
  const sock: Activator = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({});
  const gen: Generation = await sock.start([process.execPath, mainJs, '--config', cfg.file]);
  await gen.waitNotify('READY=1');
  const serving = () => gen.logs().some((l) => l.msg === 'serving' && l.listen === 'systemd:fd3');
  await until('the "serving" log line (stdout may trail READY=1)', serving);
  t.ok(serving(), 'logs that it serves on fd 3');
  const env = readFileSync(`/proc/${gen.pid}/environ`, 'utf8');
  t.match(env, /LISTEN_PID=/, 'systemd-style env as exec saw it');

  // Opened now, checked at the end: uWS's idle timeout applies to adopted connections.
  const silent = new Http1Connection(sock.port);
  await silent.ready;
  const silentSince = Date.now();

  await t.test('one request per connection', async (t) => {
    const r = await oneShot(sock.port, '/track?id=one', 'gr.test');
    t.equal(r.status, 200);
    t.equal(r.headers['content-type'], 'image/gif');
    t.equal(r.body.length, 43);
  });

  await t.test('keep-alive: many requests on one connection', async (t) => {
    const c = new Http1Connection(sock.port);
    await c.ready;
    for (let i = 0; i < 200; i++) {
      const r = await c.request(`/track?id=ka-${i}`);
      if (r.status !== 200 || r.close) t.fail(`request ${i}: ${r.status} close=${r.close}`);
    }
    t.notOk(c.isClosed, 'connection still open');
    c.end();
  });

  await t.test('pipelining: 100 requests in one write, answered in order', async (t) => {
    const c = new Http1Connection(sock.port);
    await c.ready;
    const replies = await Promise.all(c.send(Array.from({ length: 100 }, (_, i) => `/track?id=pipe-${i}`)));
    t.equal(replies.length, 100);
    t.ok(replies.every((r) => r.status === 200 && !r.close), 'all 200, kept alive');
    const health = await c.request('/health');
    t.equal(health.status, 200);
    t.equal(health.body.toString(), 'ok\n');
    c.end();
  });

  await t.test('no fd leak over thousands of connections', async (t) => {
    const before = fdCount(gen.pid);
    const total = 3000;
    const parallel = 100;
    let next = 0;
    let ok = 0;
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (next < total) {
        const i = next++;
        // Half close politely, half vanish with a reset: both must free the fd.
        const c = new Http1Connection(sock.port);
        await c.ready;
        const r = await c.request(`/track?id=leak-${i}`);
        if (r.status === 200) ok++;
        if (i % 2 === 0) c.end();
        else c.destroy();
      }
    }));
    t.equal(ok, total, 'all answered');
    // uWS closes its side when it reads the client's FIN or RST.
    const after = await poll(`the fd count back to ${before}`, () => fdCount(gen.pid), (n) => n <= before);
    t.comment(`fds before ${before}, after ${total} connections ${after}`);
    t.ok(after <= before, `fd count back to ${before} (is ${after})`);
  });

  await t.test('uWS limits hold on adopted connections', async (t) => {
    // Request heads beyond the limit main passes to loadUws (maxQueryBytes + 8 KiB).
    const big = new Http1Connection(sock.port);
    await big.ready;
    const r = await big.request(`/track?id=${'x'.repeat(64 * 1024)}`).catch((e: Error) => e);
    t.ok(r instanceof Error || r.status === 431, `oversized head refused (${r instanceof Error ? r.message : r.status})`);
    big.destroy();
    // A connection that never sends a request is closed by uWS's idle
    // timeout, as on a socket uWS accepted itself (about 32 s on both, measured).
    const how = await silent.gone;
    const waited = Date.now() - silentSince;
    t.ok(waited > 5_000 && waited < 60_000, `silent connection closed by uWS after ${waited} ms`);
    t.equal(how, undefined, 'with a FIN');
  });

  const code = await gen.stop();
  t.equal(code, 0, 'exits 0 on SIGTERM');
  t.same(gen.notified, ['READY=1', 'STOPPING=1'], 'READY=1 then STOPPING=1, from the daemon pid');
  const ids = persisted(cfg.logDir).map((v) => String(v.id));
  t.equal(ids.filter((id) => id.startsWith('pipe-')).join(','), Array.from({ length: 100 }, (_, i) => `pipe-${i}`).join(','),
    'pipelined requests persisted once each, in order');
  t.equal(ids.filter((id) => id.startsWith('leak-')).length, 3000);
});

t.test('EMFILE: backs off instead of spinning, serves the queue when fds return', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({});
  // A low fd limit, set in the exec chain so LISTEN_PID still names node.
  const gen = await sock.start(['/bin/sh', '-c', `ulimit -n 96; exec "${process.execPath}" "${mainJs}" --config "${cfg.file}"`]);
  await gen.waitNotify('READY=1');
  const held: Http1Connection[] = [];
  for (let i = 0; i < 150; i++) {
    const c = new Http1Connection(sock.port);
    await c.ready; // the kernel completes the handshake whether or not we accept
    held.push(c);
  }
  await until('the daemon to run out of fds', () => gen.logs().some((l) => l.msg === 'accept failed; backing off'));
  const cpu = (): number => {
    const f = readFileSync(`/proc/${gen.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks
  };
  const c0 = cpu();
  await sleep(1000);
  const ticks = cpu() - c0;
  t.ok(ticks < 30, `not spinning while out of fds (${ticks} ticks of CPU in 1 s)`);
  t.ok(gen.logs().some((l) => l.msg === 'accept failed; backing off' && JSON.stringify(l).includes('EMFILE')), 'logs EMFILE');
  for (const c of held) c.destroy();
  const r = await oneShot(sock.port, '/track?id=after-emfile', 'gr.test').catch((e: Error) => {
    t.comment(gen.logs().slice(-5), gen.stderr());
    void gen.exited.then((c) => t.comment('exit', c));
    throw e;
  });
  t.equal(r.status, 200, 'serves again once fds are free');
  t.equal(await gen.stop(), 0);
});
