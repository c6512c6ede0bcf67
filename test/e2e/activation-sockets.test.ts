// Socket units with more than one socket, and sockets passed to the wrong
// process, with systemd's own systemd-socket-activate: every socket passed is
// served, or scratchd refuses to start; none accepts and never answers.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { connect, createServer } from 'node:net';
import t from 'tap';
import { daemonConfig, holdSocket, mainJs, persisted } from '../helpers/socket-activation.js';
import { until, within } from '../helpers/wait.js';

/** A port free on both 127.0.0.1 and ::1 right now (bound dual stack, then released). */
function freeDualPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '::', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** GET path on host:port; rejects after timeoutMs without an answer. */
function get(host: string, port: number, path: string, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, agent: false, headers: { host: 'gr.test' }, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

t.test('two ListenStream= addresses, both named http: both are served', async (t) => {
  const cfg = daemonConfig({});
  const port = await freeDualPort();
  const proc = spawn('systemd-socket-activate',
    ['-l', `127.0.0.1:${port}`, '-l', `[::1]:${port}`, '--fdname=http:http', process.execPath, mainJs, '--config', cfg.file],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  t.teardown(() => proc.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  await until('systemd-socket-activate to listen on both', () => stderr.includes(' as 4.'));
  // The first connection makes systemd-socket-activate exec scratchd.
  t.equal(await get('::1', port, '/track?id=v6'), 200, 'IPv6 answered');
  t.equal(await get('127.0.0.1', port, '/track?id=v4'), 200, 'IPv4 answered');
  t.equal(await get('::1', port, '/track?id=v6-again'), 200, 'IPv6 answered again');
  t.match(stdout, /"msg":"serving"/);
  t.match(stdout, /"listen":"systemd:fd3,systemd:fd4"/, 'logs both fds');
  proc.kill('SIGTERM');
  t.equal(await exited, 0);
  t.same(persisted(cfg.logDir).map((l) => l.id).sort(), ['v4', 'v6', 'v6-again']);
});

t.test('a passed socket named otherwise is closed, not left open and never accepted', async (t) => {
  const cfg = daemonConfig({});
  const [port, other] = [await freeDualPort(), await freeDualPort()];
  const proc = spawn('systemd-socket-activate',
    ['-l', `127.0.0.1:${port}`, '-l', `127.0.0.1:${other}`, '--fdname=http:metrics', process.execPath, mainJs, '--config', cfg.file],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  t.teardown(() => proc.kill('SIGKILL'));
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  await until('systemd-socket-activate to listen on both', () => stderr.includes(' as 4.'));
  t.equal(await get('127.0.0.1', port, '/track?id=one'), 200, 'the http socket is served');
  // systemd-socket-activate exec'd scratchd: its copy was the last one, so a closed socket refuses.
  const how = await new Promise<string>((resolve) => {
    const c = connect(other, '127.0.0.1', () => {
      c.destroy();
      resolve('accepted by the kernel, never answered');
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  t.equal(how, 'ECONNREFUSED', 'the metrics socket is closed: a connection is refused');
  proc.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('sockets passed to a process that forked scratchd: refused at start, in one line', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({});
  // `; exit $?` keeps sh from exec'ing node: LISTEN_PID names sh, node is its child.
  const gen = await sock.start(['/bin/sh', '-c', `"${process.execPath}" "${mainJs}" --config "${cfg.file}"; exit $?`]);
  // Without the check, scratchd would serve a port of its own and never exit.
  t.equal(await within(gen.exited, 20_000, 'still running'), 1, 'exit 1');
  t.match(gen.stderr(), /^scratchd: LISTEN_PID=\d+ is not this process \(\d+\), yet fd 3 is a socket: start scratchd with exec, not from a process that forks it\n$/);
  t.same(gen.notified, [], 'never READY');
});
