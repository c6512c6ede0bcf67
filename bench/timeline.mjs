#!/usr/bin/env node
// Where the latency tail comes from: scratchd on core 0 under paced load from
// bench/go/client on core 1, which keeps every request's timing; the server
// runs with bench/timeline-preload.mjs (GC pauses, the file backend's batch
// writes) and this script samples each of its threads' CPU time
// (/proc/PID/task/TID/schedstat) every 100 ms. Output: p99 per 100 ms with
// the GC pauses, writes and thread CPU of the same 100 ms, the worst windows,
// and which of the slowest requests overlapped a GC pause or a write.
//
//   node bench/timeline.mjs [seconds (10)] [req/s (50000)] [kafka brokers]   (in the chroot)
// bench/run.mjs calls runTimeline() at half load for (c) and (d).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchdEnv, scratchdFlags } from './production.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const BUCKET_MS = 100;

/** Build the load generator (needs Go); returns its path or throws. */
export function buildClient(dir) {
  const binary = join(dir, 'timeline-client');
  const env = { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' };
  const r = spawnSync('go', ['build', '-trimpath', '-o', binary, './client'], { cwd: join(root, 'bench/go'), env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`go build ./client failed: ${r.stderr || r.error}`);
  return binary;
}

/** The text for BENCHMARKS.md's method: what the timeline shows and how. */
export function timelineMethod() {
  return `After the rounds, (c) and (d) once more each at the half-load rate, with every request timed by
\`bench/go/client\` (Go, on core 1: each of the connections sends after an exponential gap and records
when it wrote the request and how long the answer took; wrk keeps only percentiles), the server run
with \`--import bench/timeline-preload.mjs\` (every GC pause and every batch write of the file backend,
timestamped; for (d) also the bursts of Kafka delivery reports, as node-rdkafka emits them) and its threads' CPU time read from \`/proc/PID/task/*/schedstat\` every 100 ms. Per
100 ms window: requests, p99, and what else happened in it. A request "overlaps" a GC pause or a
write when the two intervals intersect (a write "in flight" counts from its call on the event loop
until its promise settles, i.e. including the pool thread's write(2) and the wait for the loop, so a
busy loop stretches it; "dispatched meanwhile" counts only the call, the moment the batch's pass on
the event loop ends). Compare each share among the slowest 1 % with the share among all requests: a
cause is over-represented in the tail.`;
}

/** Per-thread CPU ns: "name" → ns, summed over threads of the same name. */
export function threadCpu(pid) {
  const out = new Map();
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const group = tid === String(pid) ? 'event loop' : name.replace(/\d+$/, '').replace(/[#:]+$/, '');
      out.set(group, (out.get(group) ?? 0) + ns);
    } catch {}
  }
  return out;
}

async function waitReady(port, host, proc) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error('server exited before it was ready');
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

function runClient(client, { port, rate, conns, seconds, requestsFile, out }) {
  const r = execFileSync('taskset', ['-c', '1', client, '-addr', `127.0.0.1:${port}`, '-rate', String(rate), '-conns', String(conns),
    '-duration', `${seconds}s`, '-requests', requestsFile, '-out', out], { encoding: 'utf8' });
  return JSON.parse(r.trim().split('\n').pop());
}

/**
 * One timed run. server: { args (node argv after the flags), port, host },
 * returns { markdown, buckets, stats }.
 */
export async function runTimeline({ label, server, client, requestsFile, rate, conns = 200, seconds = 10, dir, nodeFlags = scratchdFlags, kafka = false }) {
  const eventsFile = join(dir, `timeline-events-${label.replace(/\W+/g, '')}.json`);
  const timesFile = join(dir, `timeline-times-${label.replace(/\W+/g, '')}.bin`);
  const proc = spawn('taskset', ['-c', '0', process.execPath, ...nodeFlags, '--import', join(root, 'bench/timeline-preload.mjs'), ...server.args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...scratchdEnv, SCRATCHD_BENCH_TIMELINE: eventsFile, ...(kafka ? { SCRATCHD_BENCH_TIMELINE_KAFKA: root } : {}) } });
  let output = '';
  proc.stdout.on('data', (c) => { output = (output + c).slice(-4000); });
  proc.stderr.on('data', (c) => { output = (output + c).slice(-4000); });
  const exited = new Promise((r) => proc.on('exit', r));
  let run;
  const samples = [];
  try {
    await waitReady(server.port, server.host, proc);
    runClient(client, { port: server.port, rate, conns, seconds: 1, requestsFile, out: '/dev/null' }); // warm-up
    proc.kill('SIGUSR2');
    await sleep(20);
    const sampler = setInterval(() => samples.push([Date.now(), threadCpu(proc.pid)]), BUCKET_MS);
    samples.push([Date.now(), threadCpu(proc.pid)]);
    run = await new Promise((resolve, reject) => {
      const c = spawn('taskset', ['-c', '1', client, '-addr', `127.0.0.1:${server.port}`, '-rate', String(rate), '-conns', String(conns),
        '-duration', `${seconds}s`, '-requests', requestsFile, '-out', timesFile], { stdio: ['ignore', 'pipe', 'inherit'] });
      let o = '';
      c.stdout.on('data', (d) => { o += d; });
      c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(o.trim().split('\n').pop())) : reject(new Error(`client exited ${code}`))));
    });
    clearInterval(sampler);
    samples.push([Date.now(), threadCpu(proc.pid)]);
  } finally {
    proc.kill('SIGTERM');
    await exited;
  }
  if (!existsSync(eventsFile)) throw new Error(`no timeline events from the server: ${output}`);
  const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
  const raw = readFileSync(timesFile);
  const n = raw.length / 16;
  const t0 = new Float64Array(n); // ms since the epoch
  const lat = new Float64Array(n); // ms
  for (let i = 0; i < n; i++) {
    t0[i] = Number(raw.readBigInt64LE(16 * i)) / 1e6;
    lat[i] = Number(raw.readBigInt64LE(16 * i + 8)) / 1e6;
  }
  return analyse({ label, t0, lat, events, samples, run, rate, dir });
}

const pct = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);

/** Does [a0, a1] intersect any interval of sorted starts/ends (ends ≥ starts, ends not sorted: use max duration)? */
function overlapper(intervals) {
  intervals.sort((x, y) => x[0] - y[0]);
  const starts = intervals.map((x) => x[0]);
  const maxLen = intervals.reduce((m, x) => Math.max(m, x[1] - x[0]), 0);
  return (a0, a1) => {
    // first interval with start > a1
    let lo = 0, hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= a1) lo = mid + 1;
      else hi = mid;
    }
    for (let j = lo - 1; j >= 0 && starts[j] >= a0 - maxLen; j--) if (intervals[j][1] >= a0) return true;
    return false;
  };
}

function analyse({ label, t0, lat, events, samples, run, rate, dir }) {
  const n = t0.length;
  // A loop, not Math.min(...t0): a spread of a quarter million arguments overflows the stack.
  let start = Infinity;
  for (let i = 0; i < n; i++) if (t0[i] < start) start = t0[i];
  const all = Float64Array.from(lat).sort();
  const p99 = pct(all, 99);
  const gcIv = events.gc.map(([s, d, k]) => [s, s + d, k]);
  const wrIv = events.writes.map(([s, e, b]) => [s, e, b]);
  const drIv = (events.reports ?? []).map(([s, e, n]) => [s, e, n]);
  const hasDr = drIv.length > 0;
  const inDr = overlapper(drIv.map((x) => x.slice()));
  const inGc = overlapper(gcIv.map((x) => x.slice()));
  const inWrite = overlapper(wrIv.map((x) => x.slice()));
  // A batch dispatched while the request waited: the call is a point in time
  // (the batch's pass on the event loop ends there), not stretched when the
  // event loop is late to settle the write's promise, as the in-flight
  // interval is; so it separates "a batch ran" from "the loop was busy".
  const batchStarted = overlapper(wrIv.map(([st]) => [st, st]));
  const cls = { all: { n: 0, gc: 0, write: 0, batch: 0, dr: 0, both: 0, neither: 0 }, tail: { n: 0, gc: 0, write: 0, batch: 0, dr: 0, both: 0, neither: 0 } };
  const neitherLat = [];
  const nb = Math.ceil((t0[n - 1] - start) / BUCKET_MS) + 1;
  const buckets = Array.from({ length: nb }, (_, i) => ({ t: i * BUCKET_MS, lat: [], gcN: 0, gcMs: 0, gcMax: 0, gcKinds: new Set(), wrN: 0, wrBytes: 0, wrMax: 0, drN: 0, drReports: 0, drMs: 0, drMax: 0, cpu: {} }));
  for (let i = 0; i < n; i++) {
    const g = inGc(t0[i], t0[i] + lat[i]);
    const w = inWrite(t0[i], t0[i] + lat[i]);
    const bs = batchStarted(t0[i], t0[i] + lat[i]);
    const dr = hasDr && inDr(t0[i], t0[i] + lat[i]);
    for (const c of lat[i] > p99 ? [cls.all, cls.tail] : [cls.all]) {
      c.n++;
      if (bs) c.batch++;
      if (dr) c.dr++;
      if (g) c.gc++;
      if (w) c.write++;
      if (g && w) c.both++;
      if (!g && !w) c.neither++;
    }
    if (!g && !w) neitherLat.push(lat[i]);
    const b = buckets[Math.floor((t0[i] - start) / BUCKET_MS)];
    if (b) b.lat.push(lat[i]);
  }
  for (const [s, e, k] of gcIv) {
    const b = buckets[Math.floor((s - start) / BUCKET_MS)];
    if (!b) continue;
    b.gcN++;
    b.gcMs += e - s;
    b.gcMax = Math.max(b.gcMax, e - s);
    b.gcKinds.add(k);
  }
  for (const [s, e, bytes] of wrIv) {
    const b = buckets[Math.floor((s - start) / BUCKET_MS)];
    if (!b) continue;
    b.wrN++;
    b.wrBytes += bytes;
    b.wrMax = Math.max(b.wrMax, e - s);
  }
  for (const [s, e, count] of drIv) {
    const b = buckets[Math.floor((s - start) / BUCKET_MS)];
    if (!b) continue;
    b.drN++;
    b.drReports += count;
    b.drMs += e - s;
    b.drMax = Math.max(b.drMax, e - s);
  }
  const groups = new Set();
  for (let i = 1; i < samples.length; i++) {
    const [t, now] = samples[i];
    const [, before] = samples[i - 1];
    const b = buckets[Math.floor((t - BUCKET_MS / 2 - start) / BUCKET_MS)];
    if (!b) continue;
    for (const [g, ns] of now) {
      const d = (ns - (before.get(g) ?? ns)) / 1e6;
      b.cpu[g] = (b.cpu[g] ?? 0) + d;
      groups.add(g);
    }
  }
  const full = buckets.filter((b) => b.lat.length >= 20);
  for (const b of full) {
    b.lat.sort((x, y) => x - y);
    b.p99 = pct(b.lat, 99);
    b.max = b.lat[b.lat.length - 1];
    b.n = b.lat.length;
  }
  const corr = (f) => {
    const xs = full.map(f), ys = full.map((b) => b.p99);
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length, my = ys.reduce((a, b) => a + b, 0) / ys.length;
    let sxy = 0, sxx = 0, syy = 0;
    for (let i = 0; i < xs.length; i++) {
      sxy += (xs[i] - mx) * (ys[i] - my);
      sxx += (xs[i] - mx) ** 2;
      syy += (ys[i] - my) ** 2;
    }
    return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
  };
  const groupList = [...groups].sort();
  const csv = ['t_ms,requests,p99_ms,max_ms,gc_pauses,gc_ms,gc_max_ms,writes,write_bytes,write_max_ms,report_bursts,reports,report_ms,report_max_ms,' + groupList.map((g) => `cpu_ms_${g.replace(/\W+/g, '_')}`).join(',')];
  for (const b of full) csv.push([b.t, b.n, b.p99.toFixed(3), b.max.toFixed(3), b.gcN, b.gcMs.toFixed(3), b.gcMax.toFixed(3), b.wrN, b.wrBytes, b.wrMax.toFixed(3), b.drN, b.drReports, b.drMs.toFixed(3), b.drMax.toFixed(3), ...groupList.map((g) => (b.cpu[g] ?? 0).toFixed(2))].join(','));
  const csvFile = join(dir, `timeline-${label.replace(/\W+/g, '')}.csv`);
  writeFileSync(csvFile, csv.join('\n') + '\n');

  const share = (c, k) => (c.n === 0 ? '–' : `${((100 * c[k]) / c.n).toFixed(1)} %`);
  const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : '–');
  const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
  const neitherSorted = Float64Array.from(neitherLat).sort();
  const secs = (t0[n - 1] - start) / 1000;
  const meanCpu = (g) => full.reduce((s, b) => s + (b.cpu[g] ?? 0), 0) / Math.max(1, full.length);
  const worst = [...full].sort((x, y) => y.p99 - x.p99).slice(0, 8);
  const p99s = full.map((b) => b.p99).sort((x, y) => x - y);
  const stats = {
    label, requests: n, errors: run.errors, rate: n / secs, p50: pct(all, 50), p99, p999: pct(all, 99.9), max: all[n - 1],
    p99Neither: pct(neitherSorted, 99), cls, gcPauses: gcIv.length, writes: wrIv.length,
    windowP99: { median: pct(p99s, 50), p90: pct(p99s, 90), max: p99s[p99s.length - 1] },
    corr: { gcMs: corr((b) => b.gcMs), writes: corr((b) => b.wrN), writeMax: corr((b) => b.wrMax), reportMs: corr((b) => b.drMs), ...Object.fromEntries(groupList.map((g) => [`cpu ${g}`, corr((b) => b.cpu[g] ?? 0)])) },
    csvFile,
  };
  const md = [];
  md.push(`#### ${label}: ${n} requests in ${secs.toFixed(1)} s (${stats.rate.toFixed(0)} req/s, asked ${rate}), client errors ${run.errors}`);
  md.push('');
  md.push(`Client-side latency: p50 ${f3(stats.p50)} ms, p99 ${f3(p99)} ms, p99.9 ${f3(stats.p999)} ms, max ${f3(stats.max)} ms. `
    + `Per 100 ms window, p99: median ${f3(stats.windowP99.median)} ms, 90th percentile ${f3(stats.windowP99.p90)} ms, worst ${f3(stats.windowP99.max)} ms. `
    + `${gcIv.length} GC pauses and ${wrIv.length} batch writes in the run${hasDr ? `, ${drIv.reduce((a, x) => a + x[2], 0)} Kafka delivery reports in ${drIv.length} bursts (longest ${f2(drIv.reduce((m, x) => Math.max(m, x[1] - x[0]), 0))} ms)` : ''}. `
    + `p99 of the requests that overlapped neither a GC pause nor a write: ${f3(stats.p99Neither)} ms.`);
  md.push('');
  const drHead = hasDr ? ' overlap a burst of Kafka delivery reports |' : '';
  const drCell = (c) => (hasDr ? ` ${share(c, 'dr')} |` : '');
  md.push(`| requests | count | overlap a GC pause | a batch write dispatched meanwhile | overlap a batch write in flight |${drHead} GC and write in flight | neither GC nor write in flight |`);
  md.push(`|---|--:|--:|--:|--:|${hasDr ? '--:|' : ''}--:|--:|`);
  md.push(`| all | ${cls.all.n} | ${share(cls.all, 'gc')} | ${share(cls.all, 'batch')} | ${share(cls.all, 'write')} |${drCell(cls.all)} ${share(cls.all, 'both')} | ${share(cls.all, 'neither')} |`);
  md.push(`| slowest 1 % (> ${f3(p99)} ms) | ${cls.tail.n} | ${share(cls.tail, 'gc')} | ${share(cls.tail, 'batch')} | ${share(cls.tail, 'write')} |${drCell(cls.tail)} ${share(cls.tail, 'both')} | ${share(cls.tail, 'neither')} |`);
  const over = [['gc', 'GC pauses'], ['batch', 'batch writes dispatched'], ['write', 'batch writes in flight'], ...(hasDr ? [['dr', 'bursts of Kafka delivery reports']] : [])]
    .map(([k, name]) => ({ name, tail: cls.tail[k] / Math.max(1, cls.tail.n), all: cls.all[k] / Math.max(1, cls.all.n) }))
    .map((x) => ({ ...x, ratio: x.tail / Math.max(x.all, 1e-9) }));
  stats.overRepresented = over;
  const strong = over.filter((x) => x.ratio >= 1.5 && x.tail >= 0.1);
  md.push('');
  md.push(strong.length === 0
    ? 'Nothing recorded here is over-represented among the slowest 1 % (none of the shares above is 1.5× its share among all requests): the tail comes from elsewhere (the event loop\'s own work, the kernel, the load generator); see the thread CPU columns.'
    : `Over-represented among the slowest 1 %: ${strong.map((x) => `${x.name} (${(100 * x.tail).toFixed(0)} % of them vs ${(100 * x.all).toFixed(0)} % of all requests, ${x.ratio.toFixed(1)}×)`).join('; ')}.`);
  md.push('');
  md.push(`Correlation over the 100 ms windows of p99 with: GC ms ${f2(stats.corr.gcMs)}, number of writes ${f2(stats.corr.writes)}, longest write ${f2(stats.corr.writeMax)}, ${hasDr ? `ms in delivery reports ${f2(stats.corr.reportMs)}, ` : ''}`
    + groupList.map((g) => `CPU of ${g} ${f2(stats.corr[`cpu ${g}`])} (mean ${f2(meanCpu(g))} ms per window)`).join(', ') + '.');
  md.push('');
  md.push(`Worst windows (per-window CSV: \`${csvFile}\` while the run's directory is kept):`);
  md.push('');
  md.push(`| t s | requests | p99 ms | max ms | GC pauses (longest ms, kinds) | writes (longest ms) |${hasDr ? ' delivery reports (bursts, longest ms) |' : ''} ${groupList.map((g) => `CPU ms ${g}`).join(' | ')} |`);
  md.push(`|--:|--:|--:|--:|---|---|${hasDr ? '---|' : ''}${groupList.map(() => '--:').join('|')}|`);
  for (const b of worst) {
    md.push(`| ${(b.t / 1000).toFixed(1)} | ${b.n} | ${f3(b.p99)} | ${f3(b.max)} | ${b.gcN} (${f2(b.gcMax)}${b.gcKinds.size ? `, ${[...b.gcKinds].join('/')}` : ''}) | ${b.wrN} (${f2(b.wrMax)}) |${hasDr ? ` ${b.drReports} (${b.drN}, ${f2(b.drMax)}) |` : ''} ${groupList.map((g) => f2(b.cpu[g] ?? 0)).join(' | ')} |`);
  }
  return { markdown: md.join('\n'), stats };
}

// ----------------------------------------------------------------- CLI ----
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = Number(process.argv[2] ?? 10);
  const rate = Number(process.argv[3] ?? 50000);
  const brokers = process.argv[4];
  const dir = mkdtempSync(join(tmpdir(), 'scratchd-timeline-'));
  execFileSync(process.execPath, [join(root, 'bench/run.mjs'), '--only', 'c', '--rounds', '0', '--no-write', '--keep', '--prep-only', dir], { stdio: 'inherit' });
  const config = join(dir, 'scratchd-file.json');
  const c = JSON.parse(readFileSync(config, 'utf8'));
  if (brokers) {
    c.backends.kafka = { enabled: true, rdkafka: { 'metadata.broker.list': brokers } };
    writeFileSync(config, JSON.stringify(c));
  }
  const client = buildClient(dir);
  const r = await runTimeline({
    label: brokers ? '(d) scratchd, file + Kafka' : '(c) scratchd, file backend', client, kafka: Boolean(brokers), requestsFile: join(dir, 'requests.json'), rate, seconds, dir,
    server: { args: [join(root, 'dist/main.js'), '--config', config], port: Number(c.listen.split(':')[1]), host: c.flavors[0].hosts[0] },
  });
  console.log(r.markdown);
  console.log(`\nfiles in ${dir}`);
}
