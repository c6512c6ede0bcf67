#!/usr/bin/env node
// Issue 18, item 7: what a second server thread costs, as CPU time per
// request (from /proc/PID/stat: robust to other work on the cores, unlike
// requests/s). Three ways to serve, alternating in rounds, each on one
// systemd-style listening socket created here and passed as fd 3:
//   one      — scratchd with "threads": 1 (one serving thread + the main thread)
//   threads2 — scratchd with "threads": 2 (issue 24; this measurement first
//              ran bench/scale/threads.mjs, the prototype it was built from)
//   procs2   — 2 scratchd processes ("threads": 1) on the same socket (each its
//              own writers, appending whole batches with O_APPEND to the same files)
// Server and wrk are not pinned: both use both cores.
//   node bench/scale/measure.mjs [seconds (8)] [rounds (2)]   (in the chroot; uses bench/run.mjs --prep-only)
import { execFileSync, spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchdEnv, scratchdFlags } from '../production.mjs';
import { cpuSeconds, vmHWM } from '../servers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function listeningFd() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve({ server: s, fd: s._handle.fd, port: s.address().port }));
  });
}

/** Spawn `argv` with the listening socket as fd 3, as systemd does (LISTEN_PID is set by the shell to its own pid, kept by exec). */
function spawnActivated(argv, fd) {
  const p = spawn('sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', 'sh', ...argv], { stdio: ['ignore', 'pipe', 'pipe', fd], env: { ...process.env, ...scratchdEnv } });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (c) => { out = (out + c).slice(-20000); });
  p.stderr.setEncoding('utf8').on('data', (c) => { out = (out + c).slice(-20000); });
  p.exited = new Promise((r) => p.on('exit', (code, sig) => r(code ?? sig)));
  p.output = () => out;
  return p;
}

async function waitReady(port, host) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      s.on('connect', () => s.write(`GET /track?ready=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
      s.on('data', (d) => { buf += d; });
      s.on('error', () => resolve(false));
      s.on('close', () => resolve(buf.startsWith('HTTP/1.1 200')));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`not ready on ${port}`);
    await sleep(100);
  }
}

function wrk(port, seconds, script, threads = 2) {
  const out = execFileSync('wrk', [`-t${threads}`, '-c64', `-d${seconds}s`, '--latency', '--timeout', '5s', '-s', script, `http://127.0.0.1:${port}/track`], { encoding: 'utf8' });
  // With -t2 the script's done() runs once with the whole run's summary.
  const r = JSON.parse(/BENCHJSON (\{.*\})/.exec(out)[1]);
  r.rps = r.requests / (r.duration_us / 1e6);
  return r;
}

function countLines(dir) {
  let lines = 0;
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.log')) {
        const b = readFileSync(p);
        for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) lines++;
      }
    }
  };
  walk(dir);
  return lines;
}

const node = process.execPath;
const flags = scratchdFlags;
const MODES = {
  one: { label: 'one serving thread (`"threads": 1`)', procs: (cfg) => [[node, ...flags, join(root, 'dist/main.js'), '--config', cfg]] },
  threads2: { label: '2 serving threads (`"threads": 2`), one writer per file', procs: (cfg, cfg2, cfgThreads2) => [[node, ...flags, join(root, 'dist/main.js'), '--config', cfgThreads2]] },
  procs2: { label: '2 processes on one socket, each its own writers', procs: (cfg, cfg2) => [[node, ...flags, join(root, 'dist/main.js'), '--config', cfg], [node, ...flags, join(root, 'dist/main.js'), '--config', cfg2]] },
};

/** Run the comparison; dir holds track.lua and scratchd-file.json from bench/run.mjs's preparation. */
export async function measureScale({ dir, seconds = 8, rounds = 2, log = console.log }) {
  const base = JSON.parse(readFileSync(join(dir, 'scratchd-file.json'), 'utf8'));
  const host = base.flavors[0].hosts[0];
  const script = join(dir, 'track.lua');
  const results = [];
  const keys = Object.keys(MODES);
  for (let round = 1; round <= rounds; round++) {
    for (const key of keys.map((_, i) => keys[(i + round - 1) % keys.length])) {
      const logDir = join(dir, 'scale-log');
      rmSync(logDir, { recursive: true, force: true });
      const cfgs = [0, 1, 2].map((i) => {
        const c = { ...base, threads: i === 2 ? 2 : 1, backends: { ...base.backends, file: { ...base.backends.file, dir: logDir } }, stats: { listen: base.stats.listen.replace(/:\d+$/, `:${Number(base.stats.listen.split(':').pop()) + i}`) } };
        const f = join(dir, `scale-${i}.json`);
        writeFileSync(f, JSON.stringify(c));
        return f;
      });
      const { server, fd, port } = await listeningFd();
      const procs = MODES[key].procs(...cfgs).map((argv) => spawnActivated(argv, fd));
      server.close();
      let r;
      try {
        await waitReady(port, host);
        wrk(port, 1, script);
        const cpu0 = procs.reduce((s, p) => s + cpuSeconds(p.pid), 0);
        r = wrk(port, seconds, script);
        const cpu1 = procs.reduce((s, p) => s + cpuSeconds(p.pid), 0);
        r.cpuUs = ((cpu1 - cpu0) * 1e6) / r.requests;
        r.rss = procs.reduce((s, p) => s + vmHWM(p.pid), 0);
      } finally {
        for (const p of procs) p.kill('SIGTERM');
        await Promise.all(procs.map((p) => p.exited));
      }
      const persisted = procs.map((p) => /^\{.*"msg":"drained".*\}$/m.exec(p.output())?.[0]).map((l) => (l ? JSON.parse(l).backends?.file?.persisted ?? NaN : NaN))
        .reduce((a, b) => a + b, 0);
      r.lines = countLines(logDir);
      r.persisted = persisted;
      results.push({ key, round, ...r });
      log(`scale round ${round} ${key}: ${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(1)} µs CPU per request, RSS ${(r.rss / 2 ** 20).toFixed(1)} MB, lines ${r.lines} (persisted ${persisted})`);
    }
  }
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const rows = Object.fromEntries(keys.map((k) => {
    const rs = results.filter((r) => r.key === k);
    return [k, { rps: med(rs.map((r) => r.rps)), cpu: med(rs.map((r) => r.cpuUs)), rss: med(rs.map((r) => r.rss)), ok: rs.every((r) => r.lines === r.persisted && r.lines >= r.requests) }];
  }));
  const md = [
    `Server and wrk (\`wrk -t2 -c64\`) both unpinned on the 2 cores, ${seconds} s per round, ${rounds} rounds alternating, median. CPU per request = the server's (all processes, all threads) user + system time / requests answered.`,
    '',
    '| how | req/s | CPU µs per request | × one thread | peak RSS MB (all processes) | Lines in files = persisted |',
    '|---|--:|--:|--:|--:|---|',
    ...keys.map((k) => `| ${MODES[k].label} | ${rows[k].rps.toFixed(0)} | ${rows[k].cpu.toFixed(1)} | ${(rows[k].cpu / rows.one.cpu).toFixed(2)}× | ${(rows[k].rss / 2 ** 20).toFixed(1)} | ${rows[k].ok ? 'yes' : '**no**'} |`),
  ].join('\n');
  const summary = `CPU per request vs one thread: 2 threads ${(rows.threads2.cpu / rows.one.cpu).toFixed(2)}×, 2 processes ${(rows.procs2.cpu / rows.one.cpu).toFixed(2)}×`;
  return { rows, results, markdown: md, summary };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = mkdtempSync(join(tmpdir(), 'scratchd-scale-'));
  execFileSync(node, [join(root, 'bench/run.mjs'), '--only', 'c', '--rounds', '0', '--no-write', '--keep', '--prep-only', dir], { stdio: 'inherit' });
  const r = await measureScale({ dir, seconds: Number(process.argv[2] ?? 8), rounds: Number(process.argv[3] ?? 2) });
  console.log(r.markdown);
}
