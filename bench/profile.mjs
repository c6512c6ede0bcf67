#!/usr/bin/env node
// Profile scratchd under the benchmark's traffic: `node bench/profile.mjs [seconds]`
// (inside the chroot). Runs dist/main.js on core 0 with PROF_FLAGS (default
// --cpu-prof), wrk on core 1 at full speed, then prints each thread's CPU time
// per request (from /proc: the event loop, V8's and libuv's helpers,
// librdkafka's threads) and, with --cpu-prof, the top functions by self time
// and by total time (inclusive). With PROF_KAFKA=host:port (a broker with the
// bench.* topics, e.g. bench/kafka-broker.mts) the Kafka backend is on too, as in (d).
// With PROF_THREADS=N the config says "threads": N and nothing is pinned
// (server and `wrk -t2` share the cores, as in the serving-threads rows);
// --cpu-prof then writes one profile per thread (the main thread's file
// names the pid's own thread id 0), each summarized. PROF_RATE=R: paced load
// instead (R req/s asked of wrk over 200 connections, as the half-load runs).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'scratchd-prof-'));
// Reuse the runner's traffic: it writes track.lua and the config with --keep.
execFileSync(process.execPath, [join(root, 'bench/run.mjs'), '--only', 'c', '--rounds', '0', '--no-write', '--keep', '--prep-only', dir], { stdio: 'inherit' });
const config = join(dir, 'scratchd-file.json');
const servingThreads = Number(process.env.PROF_THREADS ?? 0);
{
  const c = JSON.parse(readFileSync(config, 'utf8'));
  if (process.env.PROF_KAFKA) c.backends.kafka = { enabled: true, rdkafka: { 'metadata.broker.list': process.env.PROF_KAFKA } };
  if (servingThreads > 0) c.threads = servingThreads;
  writeFileSync(config, JSON.stringify(c));
}
const pin = (argv) => (servingThreads > 0 ? argv : ['taskset', '-c', '0', ...argv]);
const pinWrk = (argv) => (servingThreads > 0 ? argv.map((a) => (a === '-t1' ? '-t2' : a)) : ['taskset', '-c', '1', ...argv]);
const port = JSON.parse(readFileSync(config, 'utf8')).listen.split(':')[1];
const extra = (process.env.PROF_FLAGS ?? '--cpu-prof').split(' ').filter(Boolean);
const [cmd, ...argv] = pin([process.execPath, ...extra, ...(extra.includes('--cpu-prof') ? [`--cpu-prof-dir=${dir}`] : []), ...(extra.includes('--heap-prof') ? [`--heap-prof-dir=${dir}`] : []), join(root, 'dist/main.js'), '--config', config]);
const p = spawn(cmd, argv, { stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 1500));
/** Per thread, "tid name" → [utime, stime] in ticks (1/100 s) and voluntary context switches (its wake-ups). */
const threads = () => new Map(readdirSync(`/proc/${p.pid}/task`).map((tid) => {
  const stat = readFileSync(`/proc/${p.pid}/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const wakes = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/task/${tid}/status`, 'utf8'))[1]);
  return [`${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`, [Number(f[11]), Number(f[12]), wakes]];
}));
const before = threads();
const rate = process.env.PROF_RATE;
const [wcmd, ...wargs] = pinWrk(['wrk', '-t1', rate ? '-c200' : '-c64', `-d${seconds}s`, '-s', join(dir, 'track.lua'), `http://127.0.0.1:${port}/track`,
  ...(rate ? ['--', rate, '200'] : [])]);
const wrk = execFileSync(wcmd, wargs).toString();
const after = threads();
process.stdout.write(wrk);
const requests = JSON.parse(/BENCHJSON (.*)/.exec(wrk)[1]).requests;
console.log(`\nCPU µs per request by thread (${requests} requests): all, user, system; wake-ups (voluntary context switches) per 1000 requests`);
let total = 0;
for (const [name, [user, sys, wakes]] of after) {
  const [user0, sys0, wakes0] = before.get(name) ?? [0, 0, 0];
  const u = ((user - user0) * 1e4) / requests;
  const s = ((sys - sys0) * 1e4) / requests;
  total += u + s;
  if (u + s >= 0.01) console.log(`${(u + s).toFixed(2).padStart(7)} ${u.toFixed(2).padStart(7)} ${s.toFixed(2).padStart(7)} ${(((wakes - wakes0) * 1000) / requests).toFixed(1).padStart(7)}  ${name}`);
}
console.log(`${total.toFixed(2).padStart(7)}  all threads`);
p.kill('SIGTERM');
await new Promise((r) => p.on('exit', r));
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  console.log(`\n== ${file}`);
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const counts = new Map();
  for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  const total = prof.samples.length;
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*\/(src|dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
  const incl = new Map();
  for (const [id, c] of counts) {
    const n = byId.get(id);
    self.set(key(n), (self.get(key(n)) ?? 0) + c);
    const seen = new Set();
    for (let x = id; x !== undefined; x = parent.get(x)) {
      const k = key(byId.get(x));
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + c);
    }
  }
  const top = (m, title) => {
    console.log(`\n${title} (${total} samples)`);
    for (const [k, c] of [...m].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${((100 * c) / total).toFixed(1).padStart(5)}%  ${k}`);
  };
  top(self, 'self time');
  top(incl, 'inclusive time');
}
console.log(`\nprofile files in ${dir}`);
