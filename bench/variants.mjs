#!/usr/bin/env node
// Short A/B runs of scratchd started in different ways, for the figures that
// survive a shared machine: peak RSS (VmHWM), CPU time per request and
// scavenges per request at maximum load. Latency is not reported: on shared
// cores it measures the neighbours. Inside the chroot:
//
//   node bench/variants.mjs SECONDS ROUNDS 'VARIANTS'
//
// VARIANTS is a JSON array of {name, flags?, env?, kafka?, rdkafka?}:
// `flags` node flags and `env` environment instead of the production ones
// (bench/production.mjs; `"env": {}` runs without MALLOC_ARENA_MAX), `kafka` true for (d)
// (a broker from bench/kafka-broker.mts is started once), `rdkafka` settings
// laid over backends.kafka.rdkafka. The variants alternate within each
// round. Pinned like bench/run.mjs: server on core 0, wrk on core 1, the
// same traffic (bench/run.mjs --prep-only). With Kafka, every run checks
// that the Kafka backend's `persisted` equals the Lines in the files.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchdEnv, scratchdFlags } from './production.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [seconds = '6', rounds = '2', spec = '[]'] = process.argv.slice(2);
const variants = JSON.parse(spec);
const dir = mkdtempSync(join(tmpdir(), 'scratchd-variants-'));
execFileSync(process.execPath, [join(root, 'bench/run.mjs'), '--only', 'c', '--rounds', '0', '--no-write', '--keep', '--prep-only', dir], { stdio: 'ignore' });
const fileConfig = JSON.parse(readFileSync(join(dir, 'scratchd-file.json'), 'utf8'));
const port = fileConfig.listen.split(':')[1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

let broker = null;
if (variants.some((v) => v.kafka)) {
  const tsImport = join(root, 'node_modules/@tapjs/typescript/dist/esm/import.mjs');
  const p = spawn('taskset', ['-c', '1', process.execPath, `--import=${tsImport}`, join(root, 'bench/kafka-broker.mts')], {
    stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
  });
  const brokers = await new Promise((resolve, reject) => {
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (c) => {
      out += c;
      const m = /BROKERS (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    p.on('exit', (code) => reject(new Error(`broker helper exited ${code}`)));
  });
  broker = { brokers, stop: () => { p.stdin.end(); p.kill('SIGTERM'); } };
  console.log(`broker at ${brokers}`);
}

function configFor(v) {
  const c = structuredClone(fileConfig);
  if (v.kafka) c.backends.kafka = { enabled: true, rdkafka: { 'metadata.broker.list': broker.brokers, ...(v.rdkafka ?? {}) } };
  const file = join(dir, `config-${v.name}.json`);
  writeFileSync(file, JSON.stringify(c));
  return file;
}

const cpuSeconds = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
};
const vmHWM = (pid) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

function wrk(secs) {
  const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', '-c64', `-d${secs}s`, '-s', join(dir, 'track.lua'), `http://127.0.0.1:${port}/track`]).toString();
  return JSON.parse(/BENCHJSON (.*)/.exec(out)[1]);
}

function countLines(d) {
  let n = 0;
  const walk = (x) => {
    for (const e of readdirSync(x, { withFileTypes: true })) {
      const p = join(x, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.log')) {
        const b = readFileSync(p);
        for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
      }
    }
  };
  walk(d);
  return n;
}

async function runOne(v) {
  const logDir = fileConfig.backends.file.dir;
  rmSync(logDir, { recursive: true, force: true });
  const gc = join(dir, `gc-${v.name}`);
  for (const f of readdirSync(dir).filter((f) => f.startsWith(`gc-${v.name}`))) rmSync(join(dir, f));
  const flags = v.flags ?? scratchdFlags;
  const p = spawn('taskset', ['-c', '0', process.execPath, ...flags, '--import', join(root, 'bench/gc-preload.mjs'), join(root, 'dist/main.js'), '--config', configFor(v)], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(v.env ?? scratchdEnv), SCRATCHD_BENCH_GC: gc },
  });
  let output = '';
  p.stdout.setEncoding('utf8').on('data', (c) => { output += c; });
  p.stderr.setEncoding('utf8').on('data', (c) => { output += c; });
  const exited = new Promise((r) => p.on('exit', r));
  for (let i = 0; ; i++) {
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Host: ${fileConfig.flavors[0].hosts[0]}`, `http://127.0.0.1:${port}/track?ready=1`], { encoding: 'utf8' });
    if (r.stdout === '200') break;
    if (i > 200) throw new Error(`not ready: ${output}`);
    await sleep(100);
  }
  wrk(1);
  p.kill('SIGUSR2');
  const c0 = cpuSeconds(p.pid);
  const w = wrk(seconds);
  const c1 = cpuSeconds(p.pid);
  p.kill('SIGUSR2');
  await sleep(200);
  const rss = vmHWM(p.pid);
  p.kill('SIGTERM');
  await exited;
  const g = JSON.parse(readFileSync(`${gc}.1`, 'utf8'));
  const r = {
    name: v.name, rps: w.requests / (w.duration_us / 1e6), cpuUs: ((c1 - c0) * 1e6) / w.requests, share: (c1 - c0) / (w.duration_us / 1e6),
    rss, gcUs: (g.totalMs * 1e3) / w.requests, scav10k: ((g.byKind.minor?.count ?? 0) * 1e4) / w.requests, majors: (g.byKind.major?.count ?? 0), gcMax: g.maxMs, over5: g.over5ms,
  };
  if (v.kafka) {
    const m = /^\{.*"msg":"drained".*\}$/m.exec(output);
    const lines = countLines(logDir);
    const k = m ? JSON.parse(m[0]).backends.kafka : null;
    const b = [...output.matchAll(/^POLLBURSTS (\{.*\})$/gm)][1];
    if (b) r.bursts = JSON.parse(b[1]);
    r.exact = k !== null && k.persisted === lines && k.dropped === 0 ? 'exact' : `NOT EXACT (${JSON.stringify(k)} vs ${lines})`;
  }
  return r;
}

const results = [];
try {
  for (let round = 0; round < Number(rounds); round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const v of order) {
      const r = await runOne(v);
      results.push(r);
      console.log(`round ${round + 1} ${r.name}: ${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(2)} µs CPU/req (share ${(100 * r.share).toFixed(0)} %), peak RSS ${r.rss.toFixed(1)} MB, scavenges/10k req ${r.scav10k.toFixed(2)}, GC pause µs/req ${r.gcUs.toFixed(2)}, major ${r.majors}, GC max ${r.gcMax.toFixed(2)} ms, >5 ms ${r.over5}${r.exact ? `, ${r.exact}` : ''}${r.bursts ? `, report bursts ${JSON.stringify(r.bursts)}` : ''}`);
    }
  }
} finally {
  broker?.stop();
}
console.log('\n| variant | CPU µs/req | peak RSS MB (median / max) | scavenges per 10k req | GC pause µs per req | longest GC pause ms | pauses > 5 ms |');
console.log('|---|--:|--:|--:|--:|--:|--:|');
for (const v of variants) {
  const rs = results.filter((r) => r.name === v.name);
  console.log(`| ${v.name} | ${median(rs.map((r) => r.cpuUs)).toFixed(2)} | ${median(rs.map((r) => r.rss)).toFixed(1)} / ${Math.max(...rs.map((r) => r.rss)).toFixed(1)} | ${median(rs.map((r) => r.scav10k)).toFixed(2)} | ${median(rs.map((r) => r.gcUs)).toFixed(2)} | ${Math.max(...rs.map((r) => r.gcMax)).toFixed(2)} | ${rs.reduce((n, r) => n + r.over5, 0)} |${rs.some((r) => r.exact && r.exact !== 'exact') ? ' accounting NOT exact' : ''}`);
}
rmSync(dir, { recursive: true, force: true });
