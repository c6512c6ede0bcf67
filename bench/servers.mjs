// Server processes for the benchmarks: start one (pinned to core 0 unless
// told otherwise), wait until it answers, read its CPU time and peak RSS from
// /proc, stop it.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { scratchdEnv, scratchdFlags } from './production.mjs';
import { FLAVORS } from './traffic.mjs';
import { node, root, sleep } from './util.mjs';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function spawnServer(name, cmd, args, env = {}, pin = true) {
  const proc = spawn(pin ? 'taskset' : cmd, pin ? ['-c', '0', cmd, ...args] : args, {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (c) => { output = (output + c).slice(-8000); });
  proc.stderr.setEncoding('utf8').on('data', (c) => { output = (output + c).slice(-8000); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
  return { name, proc, exited, output: () => output };
}

/** One GET /track until it answers 200 (the server is up). */
export async function waitReady(port, host, server, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.proc.exitCode !== null) throw new Error(`${server.name} exited: ${server.output()}`);
    const status = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      s.on('connect', () => s.write(`GET /track?ready=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
      s.on('data', (d) => { buf += d; });
      s.on('error', () => resolve(0));
      s.on('close', () => resolve(Number(buf.split(' ')[1]) || 0));
    });
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${server.name} not ready on ${port}: ${server.output()}`);
    await sleep(100);
  }
}

export function vmHWM(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system, all threads) the process has used so far. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function stopServer(server, signal = 'SIGTERM', timeoutMs = 30_000) {
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill(signal);
  const t = setTimeout(() => server.proc.kill('SIGKILL'), timeoutMs);
  const code = await server.exited;
  clearTimeout(t);
  return code;
}

/** scratchd as in production on `configFile`, ready; `fn()`; then stopped, its day files removed. */
export async function withScratchd(ctx, configFile, fn) {
  rmSync(join(ctx.dir, 'log'), { recursive: true, force: true });
  const s = spawnServer('scratchd', node, [...scratchdFlags, join(root, 'dist/main.js'), '--config', configFile], scratchdEnv);
  try {
    await waitReady(ctx.ports.c, FLAVORS[0].host, s);
    return await fn();
  } finally {
    await stopServer(s);
    rmSync(join(ctx.dir, 'log'), { recursive: true, force: true });
  }
}
