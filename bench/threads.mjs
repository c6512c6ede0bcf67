// Issue 24's targets: serving threads on the whole machine. Run by
// bench/run.mjs (`--only threads`, also in the default run) with the
// runner's own tools (h: spawn, wrk, checks), so the traffic, the configs and
// the correctness checks are the pinned rows' own.
//
// Nothing is pinned: every server and `wrk -t2` share both cores. Contenders,
// the order rotating per round:
//   (b2) nginx, worker_processes 2 (otherwise (b)'s config)
//   (c2) scratchd, file backend, threads: 2
//   (d2) scratchd, file + Kafka, threads: 2
//   (c1) scratchd, file backend, threads: 1 (for the overhead of a second thread)
//   (g2) the Go original, GOMAXPROCS=2
// Per contender and round: start, 1 s warm-up, DURATION s at maximum load
// (wrk -t2 -c64), PACED s at half load (wrk -t2 -c200, paced as (e)), stop,
// check. (d2) is paced at half of its own maximum, the others at half of
// (c2)'s; both calibrated at the start. Each scratchd thread's CPU time is
// read from /proc/PID/task/TID around each run and grouped (see classify()).
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SHIPPED_SPOOL } from './configs.mjs';
import { readStats } from './stats.mjs';

/**
 * The process's tasks: tid, name, start time (clock ticks since boot) and
 * CPU time in ns (schedstat's time on CPU: finer than stat's ticks).
 */
export function tasks(pid) {
  const out = [];
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let ns;
      try {
        ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        ns = ((Number(f[11]) + Number(f[12])) * 1e9) / 100;
      }
      out.push({ tid: Number(tid), name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), start: Number(f[19]), ns });
    } catch {}
  }
  return out;
}

/**
 * tid → group. Node 20 names none of its own threads: the main thread, V8's
 * platform workers, its signal-watcher thread and every worker_thread all
 * keep the process's name ("node"); libuv's pool threads are
 * "libuv-worker", librdkafka's "rdk:…". The main thread is the task whose
 * tid is the pid. The serving threads are the last `serving` "node" tasks
 * to start: scratchd starts them after everything else of Node's (the
 * helpers start with the process, before any JavaScript runs).
 */
export function classify(pid, serving) {
  const all = tasks(pid);
  const main = all.find((t) => t.tid === pid);
  const groups = new Map();
  const same = all.filter((t) => t.tid !== pid && t.name === main?.name).sort((a, b) => a.start - b.start || a.tid - b.tid);
  const servingTids = new Set(same.slice(Math.max(0, same.length - serving)).map((t) => t.tid));
  for (const t of all) {
    groups.set(t.tid, t.tid === pid ? 'main' : servingTids.has(t.tid) ? 'serving'
      : t.name.startsWith('rdk:') ? 'librdkafka' : t.name.startsWith('libuv') ? 'libuv pool' : t.name === main?.name ? 'node/V8 helpers' : 'other');
  }
  return { groups, helpers: same.length - servingTids.size, servingTids: [...servingTids] };
}

/** CPU ns per group between two calls: `const end = cpuSpan(pids, groupOf); …; end()`. */
function cpuSpan(pids, groupOf) {
  const snap = () => new Map(pids().flatMap((p) => tasks(p).map((t) => [`${p}/${t.tid}`, [groupOf(p, t.tid), t.ns]])));
  const from = snap();
  return () => {
    const to = snap();
    const g = {};
    for (const [k, [group, ns]] of to) g[group] = (g[group] ?? 0) + ns - (from.get(k)?.[1] ?? 0);
    return g;
  };
}

/** A task's voluntary context switches: how often it went to sleep and was woken (for the main thread: about once per relay delivery). */
function wakeUps(pid, tid) {
  try {
    return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))[1]);
  } catch {
    return NaN;
  }
}

function vmRSS(pid) {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  } catch {
    return NaN;
  }
}

/** scratchd's Kafka backend: Lines acknowledged by the broker so far (/stats). */
async function kafkaPersisted(statsPort) {
  return (await readStats(statsPort)).backends.kafka.persisted;
}

/** Records in the bench topics (their one partition's high watermark), through node-rdkafka in this process. */
async function topicRecords(root, brokers, topics) {
  const Kafka = createRequire(join(root, 'package.json'))('node-rdkafka');
  const p = new Kafka.Producer({ 'metadata.broker.list': brokers, 'client.id': 'scratchd-bench-offsets' });
  await new Promise((resolve, reject) => p.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve())));
  try {
    let n = 0;
    for (const t of topics) {
      n += await new Promise((resolve, reject) => p.queryWatermarkOffsets(t, 0, 10_000, (err, o) => (err ? reject(err) : resolve(o.highOffset))));
    }
    return n;
  } finally {
    await new Promise((resolve) => p.disconnect(resolve));
  }
}

export function threadContenders(h, ctx) {
  const scratchd = (label, configFile, threads) => ({
    label, node: true, threads,
    port: ctx.ports.c,
    start: () => {
      rmSync(join(ctx.dir, 'log'), { recursive: true, force: true });
      return h.spawnServer('scratchd', h.node, [...h.scratchdFlags, join(h.root, 'dist/main.js'), '--config', configFile], h.scratchdEnv, false);
    },
    stop: (s) => h.stopServer(s),
    pids: (pid) => [pid],
    check: () => h.checkLines(join(ctx.dir, 'log'), ctx.expected),
  });
  // (d2) runs as debian/config.json ships it, with the spool: what Kafka
  // cannot take yet waits there; each round starts with an empty one and
  // ends once it is empty again (runOne), so the topic check counts all.
  const spooled = (con) => ({
    ...con, kafka: true, spool: true,
    start: () => {
      rmSync(join(ctx.dir, SHIPPED_SPOOL), { recursive: true, force: true });
      return con.start();
    },
  });
  const c = {
    b2: {
      label: '(b2) nginx, worker_processes 2',
      port: ctx.ports.b,
      start: () => {
        rmSync(join(ctx.dir, 'nginx-access.log'), { force: true });
        return h.spawnServer('nginx', 'nginx', ['-c', ctx.nginx2Conf, '-p', ctx.dir, '-e', join(ctx.dir, 'nginx-error.log')], {}, false);
      },
      stop: (s) => h.stopServer(s, 'SIGQUIT'),
      pids: (pid) => [pid, ...h.childPids(pid)],
      check: () => h.countNginxLines(join(ctx.dir, 'nginx-access.log')),
    },
    c2: scratchd('(c2) scratchd, file backend, threads: 2', ctx.configFile2, 2),
    d2: ctx.kafkaConfigFile2 ? spooled(scratchd('(d2) scratchd, file + Kafka (spool as shipped), threads: 2', ctx.kafkaConfigFile2, 2)) : null,
    c1: scratchd('(c1) scratchd, file backend, threads: 1, unpinned', ctx.configFile, 1),
    g2: ctx.goBinary ? {
      label: '(g2) Go net/http, original design, GOMAXPROCS=2',
      port: ctx.ports.g,
      start: () => {
        rmSync(join(ctx.dir, 'go-log'), { recursive: true, force: true });
        return h.spawnServer('scratchd-go', ctx.goBinary, ['-listen', `127.0.0.1:${ctx.ports.g}`, '-dir', join(ctx.dir, 'go-log'),
          ...h.FLAVORS.flatMap((f) => ['-flavor', `${f.name}=${f.host},${f.timeZone}`])], { GOMAXPROCS: '2' }, false);
      },
      stop: (s) => h.stopServer(s),
      pids: (pid) => [pid],
      check: () => h.checkLines(join(ctx.dir, 'go-log'), ctx.expected),
      drained: true,
    } : null,
  };
  for (const k of ['c2', 'd2', 'c1']) if (c[k]) c[k].drained = true;
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== null));
}

const W = { pin: false, threads: 2 };

/**
 * Half of a contender's maximum, and the rate to ask wrk for to get it done
 * (bench/load.mjs's calibrate(), unpinned). With Kafka also what the broker
 * acknowledged per second meanwhile: the serving threads can answer faster
 * than the main thread gets Lines to Kafka, and the difference only fills
 * the Kafka queue (then drops).
 */
async function calibrate(h, ctx, con, seconds) {
  const s = con.start();
  try {
    await h.waitReady(con.port, h.FLAVORS[0].host, s);
    await h.wrk(con.port, { seconds: Math.min(2, seconds), conns: h.CONNS, script: ctx.script, ...W });
    const p0 = con.kafka ? await kafkaPersisted(ctx.ports.stats) : 0;
    const t0 = performance.now();
    const max = await h.wrk(con.port, { seconds, conns: h.CONNS, script: ctx.script, ...W });
    const acked = con.kafka ? ((await kafkaPersisted(ctx.ports.stats)) - p0) / ((performance.now() - t0) / 1000) : Infinity;
    const sustained = Math.min(max.rps, acked);
    const targetRate = Math.round(sustained / 2 / 100) * 100;
    const probe = await h.wrk(con.port, { seconds: Math.min(3, seconds), conns: h.PACED_CONNS, script: ctx.script, rate: targetRate, ...W });
    return { rps: sustained, answered: max.rps, acked, targetRate, pacedRate: Math.round(targetRate * Math.min(2, Math.max(1, targetRate / probe.rps))) };
  } finally {
    await con.stop(s);
  }
}

async function runOne(h, ctx, key, con, round) {
  const r = { key, round };
  const topics = h.FLAVORS.map((f) => `bench.${f.name}`);
  if (con.kafka) r.topicBefore = await topicRecords(h.root, ctx.brokers, topics);
  const server = con.start();
  try {
    await h.waitReady(con.port, h.FLAVORS[0].host, server);
    const pid = server.proc.pid;
    const cls = con.node ? classify(pid, con.threads) : null;
    if (cls) {
      r.servingTids = cls.servingTids;
      r.helpers = cls.helpers;
    }
    r.rssIdle = con.pids(pid).reduce((s, p) => s + vmRSS(p), 0);
    const groupOf = (p, tid) => (cls ? cls.groups.get(tid) ?? 'other' : 'process');
    const pids = () => con.pids(pid);
    const warm = await h.wrk(con.port, { seconds: 1, conns: h.CONNS, script: ctx.script, ...W });
    let end = cpuSpan(pids, groupOf);
    let t0 = performance.now();
    const wakes0 = con.node ? wakeUps(pid, pid) : NaN;
    const p0 = con.kafka ? await kafkaPersisted(ctx.ports.stats) : 0;
    r.max = await h.wrk(con.port, { seconds: h.DURATION, conns: h.CONNS, script: ctx.script, ...W });
    r.max.cpu = end();
    if (con.kafka) r.max.acked = ((await kafkaPersisted(ctx.ports.stats)) - p0) / ((performance.now() - t0) / 1000);
    r.max.mainWakes = con.node ? wakeUps(pid, pid) - wakes0 : NaN;
    r.max.wall = (performance.now() - t0) / 1000;
    r.rss = con.pids(pid).reduce((s, p) => s + h.vmHWM(p), 0);
    const rate = con.kafka ? ctx.calD : ctx.calC;
    end = cpuSpan(pids, groupOf);
    t0 = performance.now();
    r.paced = await h.wrk(con.port, { seconds: h.PACED_DURATION, conns: h.PACED_CONNS, script: ctx.script, rate: rate.pacedRate, ...W });
    r.paced.cpu = end();
    r.paced.wall = (performance.now() - t0) / 1000;
    r.paced.aimed = rate.targetRate;
    // + 1: the readiness probe is a Line too.
    r.expectedOk = warm.ok + r.max.ok + r.paced.ok + 1;
    r.inFlightMax = h.CONNS * 2 + h.PACED_CONNS;
    if (con.spool) r.spoolDrainS = await spoolEmptied(ctx.ports.stats);
  } finally {
    r.exit = await con.stop(server);
  }
  Object.assign(r, con.check());
  if (con.drained) {
    const m = /^\{.*"msg":"drained".*\}$/m.exec(server.output());
    r.drained = m ? JSON.parse(m[0]).backends : null;
  }
  if (con.kafka) r.topic = (await topicRecords(h.root, ctx.brokers, topics)) - r.topicBefore;
  return r;
}

/** Seconds until the Kafka spool is empty and Lines go to librdkafka again (at most 5 minutes). */
async function spoolEmptied(statsPort) {
  const t0 = performance.now();
  for (;;) {
    const s = (await readStats(statsPort)).kafka_spool;
    if (s === undefined || s === null || (s.records === 0 && s.spilling === 0)) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > 300_000) throw new Error(`the Kafka spool did not empty in 5 minutes: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);
/** µs of CPU per request in a run, for one group of threads (or all). */
const perReq = (run, group) => (group === undefined ? sum(run.cpu) : run.cpu[group] ?? 0) / 1e3 / run.requests;

export async function measureThreads(h, ctx) {
  const cons = threadContenders(h, ctx);
  const keys = ['b2', 'c2', 'd2', 'c1', 'g2'].filter((k) => cons[k]);
  h.log(`threads: calibrating (c2) at maximum load for ${h.CALIBRATION} s (wrk -t2, unpinned)`);
  ctx.calC = await calibrate(h, ctx, cons.c2, h.CALIBRATION);
  h.log(`  (c2) ${ctx.calC.rps.toFixed(0)} req/s; half load ${ctx.calC.targetRate} (wrk asked for ${ctx.calC.pacedRate})`);
  if (cons.d2) {
    // (d2) gets (c2)'s half load, as (d) gets (e)'s in the pinned rows: the
    // same offered load, and one Kafka sustains (its acknowledgements during
    // the maximum load are far below the answers, see the table).
    ctx.dCal = await calibrate(h, ctx, cons.d2, h.CALIBRATION);
    ctx.calD = ctx.calC;
    h.log(`  (d2) ${ctx.dCal.answered.toFixed(0)} req/s answered, ${ctx.dCal.acked.toFixed(0)} Lines/s acknowledged by Kafka meanwhile; paced at (c2)'s half load`);
  }
  const results = [];
  for (let round = 1; round <= h.ROUNDS; round++) {
    for (const key of keys.map((_, i) => keys[(i + round - 1) % keys.length])) {
      h.log(`threads round ${round}/${h.ROUNDS}: ${cons[key].label}`);
      const r = await runOne(h, ctx, key, cons[key], round);
      results.push(r);
      const th = r.max.cpu.serving !== undefined
        ? `; µs/req serving ${perReq(r.max, 'serving').toFixed(2)}, main ${perReq(r.max, 'main').toFixed(2)}, whole ${perReq(r.max).toFixed(2)}` : `; µs/req ${perReq(r.max).toFixed(2)}`;
      h.log(`  max ${r.max.rps.toFixed(0)} req/s p99 ${(r.max.p99 / 1000).toFixed(3)} ms${th}; paced ${r.paced.rps.toFixed(0)} req/s p99 ${(r.paced.p99 / 1000).toFixed(3)} ms, `
        + `µs/req ${perReq(r.paced).toFixed(2)}; RSS idle ${(r.rssIdle / 2 ** 20).toFixed(1)} peak ${(r.rss / 2 ** 20).toFixed(1)} MB; lines ${r.lines} vs 2xx ${r.expectedOk}`
        + `${r.topic !== undefined ? `, topic +${r.topic}` : ''}${r.drained ? `, persisted ${Object.entries(r.drained).map(([n, b]) => `${n} ${b.persisted}`).join(' ')}` : ''}`);
    }
  }
  return { keys, labels: Object.fromEntries(keys.map((k) => [k, cons[k].label])), results, calC: ctx.calC, calD: ctx.calD, dCal: ctx.dCal };
}

// ------------------------------------------------------------ the report ----

const med = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const fr = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const fms = (us) => (Number.isFinite(us) ? (us / 1000).toFixed(3) : '–');
const fmb = (b) => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(1) : '–');
const verdict = (ok) => (ok === null ? 'n/a' : ok ? 'met' : '**missed**');

/** Per contender: medians over rounds. */
function summarize(m) {
  const rows = {};
  for (const k of m.keys) {
    const rs = m.results.filter((r) => r.key === k);
    const at = (run) => ({
      rps: med(rs.map((r) => r[run].rps)),
      acked: med(rs.map((r) => r[run].acked)),
      p50: med(rs.map((r) => r[run].p50)),
      p99: med(rs.map((r) => r[run].p99)),
      p99All: rs.map((r) => r[run].p99),
      p999: med(rs.map((r) => r[run].p999)),
      whole: med(rs.map((r) => perReq(r[run]))),
      share: med(rs.map((r) => sum(r[run].cpu) / 1e9 / r[run].wall)),
      linesPerWake: med(rs.map((r) => r[run].requests / r[run].mainWakes)),
      g: Object.fromEntries(['serving', 'main', 'node/V8 helpers', 'libuv pool', 'librdkafka', 'other'].map((g) => [g, med(rs.map((r) => perReq(r[run], g)))])),
    });
    rows[k] = { max: at('max'), paced: at('paced'), rssIdle: med(rs.map((r) => r.rssIdle)), rss: med(rs.map((r) => r.rss)), helpers: rs[0]?.helpers };
  }
  return rows;
}

function checks(m) {
  const out = [];
  for (const r of m.results) {
    const label = `round ${r.round} ${r.key}`;
    const bad = r.max.status + r.paced.status + r.max.socketErrors + r.paced.socketErrors;
    if (bad > 0) out.push({ ok: false, text: `${label}: ${bad} non-2xx answers or socket errors` });
    if (r.exit !== 0 && r.exit !== null && r.key !== 'b2') out.push({ ok: false, text: `${label}: exit ${r.exit}` });
    if (r.key === 'b2') continue;
    const extra = r.lines - r.expectedOk;
    const linesOk = extra >= 0 && extra <= r.inFlightMax && r.bad === 0;
    let text = `${label}: ${r.lines} Lines in files, wrk 2xx ${r.expectedOk} (+${extra} in flight at wrk's cut-offs, ≤ ${r.inFlightMax}), bad ${r.bad}`;
    let ok = linesOk;
    if (r.drained === null) {
      ok = false;
      text += `, no 'drained' log line (exit ${r.exit})`;
    } else if (r.drained) {
      for (const [name, b] of Object.entries(r.drained)) {
        ok &&= b.persisted === r.lines && b.dropped === 0;
        text += `, ${name} persisted ${b.persisted} dropped ${b.dropped}`;
      }
    }
    if (r.topic !== undefined) {
      ok &&= r.topic === r.lines;
      text += `, records added to the topics ${r.topic}`;
    }
    if (r.spoolDrainS !== undefined) text += ` (the spool empty ${r.spoolDrainS.toFixed(0)} s after the paced run)`;
    out.push({ ok, text });
  }
  return out;
}

/** req/s on n cores by Amdahl's law: 1 / (serial + parallel / n), µs per request. */
const amdahl = (serial, parallel, n) => 1e6 / (serial + parallel / n);
/** req/s on n cores if the main thread's work overlapped the rest perfectly: n cores of CPU, but never more than one for the main thread. */
const pipeline = (serial, parallel, n) => Math.min((1e6 * n) / (serial + parallel), 1e6 / serial);

export function renderThreads(m, info, opts) {
  const rows = summarize(m);
  const cks = checks(m);
  const { b2, c2, d2, c1, g2 } = rows;
  const L = m.labels;
  const o = [];
  o.push('## Serving threads on the whole machine (issue 24)', '');
  o.push(`Generated by \`node bench/run.mjs --only threads\` (also part of \`npm run bench\`) on ${info.date} UTC, scratchd at ${info.commit}; `
    + `load average at start ${info.load}, at the end ${info.loadEnd} (the 2 cores are shared with other work: ratios of the same run are the figures, absolute rates move between runs).`, '');
  o.push('Method:', '');
  o.push(`- Nothing pinned: each server and the load generator share both cores (\`wrk -t2\`). ${h2(opts)} `
    + `Per contender and round, the order rotating: start, a 200, 1 s warm-up, ${opts.DURATION} s at maximum load (\`wrk -t2 -c${opts.CONNS}\`), `
    + `${opts.PACED_DURATION} s at half load (\`wrk -t2 -c${opts.PACED_CONNS}\`, each connection paced with exponential gaps as in (e)), stop, check. Medians of ${opts.ROUNDS} rounds.`);
  o.push(`- Half load: every contender at ${m.calC.targetRate} req/s, half of (c2)'s ${f(m.calC.rps)} req/s in a ${opts.CALIBRATION} s calibration at the start (wrk asked for ${m.calC.pacedRate}), as (d) gets (e)'s half load in the pinned rows.`
    + (m.dCal ? ` (d2) calibrated the same way answered ${f(m.dCal.answered)} req/s while its Kafka backend had ${f(m.dCal.acked)} Lines/s acknowledged: half of the answers would be no load it sustains.` : ''));
  o.push(`- scratchd: \`${Object.entries(opts.scratchdEnv).map(([k, v]) => `${k}=${v} `).join('')}node ${opts.scratchdFlags.join(' ')} dist/main.js\`, \`"threads": 2\` or \`1\` in the config; `
    + `(b2) is (b)'s nginx.conf with \`worker_processes 2\`; (g2) is \`bench/go\` with \`GOMAXPROCS=2\`.`);
  o.push('- CPU per thread: each task\'s time on CPU from `/proc/PID/task/TID/schedstat` before and after each run. Node 20 names none of its threads but libuv\'s pool (`libuv-worker`); librdkafka\'s are `rdk:…`. '
    + `The main thread is the task whose tid is the pid; the serving threads are the last \`threads\` tasks named \`node\` to start (scratchd starts them after all of Node's own, which start with the process: ${f(c2?.helpers)} of them here, V8's platform worker and delayed-task thread (\`--v8-pool-size=1\`) and Node's signal watcher). `
    + 'V8\'s helpers serve every isolate (concurrent marking, compilation), so their time is shown apart, not charged to a thread. "µs per request" divides by the requests wrk counted.');
  o.push('- Correctness every scratchd and Go round: Lines in files checked one by one against the Values their query gives, their count against wrk\'s 2xx (+ the readiness probe, ≤ one in flight per connection at each wrk cut-off), '
    + '`persisted` of every backend (the \'drained\' log line) = Lines in files, nothing dropped; with Kafka the records added to the three bench topics over the round (their high watermarks before start and after exit) = Lines in files.');
  o.push('- The Kafka broker (a JVM, started by the runner, pinned to core 1 with wrk for the pinned rows) is unpinned for these rows too (`taskset -a -p -c 0,1` on its processes, back to core 1 after): it shares both cores with (d2) and wrk.', '');

  o.push(`### Maximum load, wrk -t2 -c${opts.CONNS}, nothing pinned`, '');
  o.push('| contender | req/s | × (b2) | Lines/s acknowledged by Kafka | whole-process CPU µs per request | cores used by the server | p50 ms | p99 ms | RSS after start MB | peak RSS MB |');
  o.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const k of m.keys) {
    const r = rows[k];
    o.push(`| ${L[k]} | ${f(r.max.rps)} | ${fr(r.max.rps / b2?.max.rps)} | ${f(r.max.acked)} | ${f(r.max.whole, 2)} | ${f(r.max.share, 2)} | ${fms(r.max.p50)} | ${fms(r.max.p99)} | ${fmb(r.rssIdle)} | ${fmb(r.rss)} |`);
  }
  if (d2) o.push('', `(d2) answers faster than its Lines reach Kafka ("Lines/s acknowledged by Kafka": /stats \`backends.kafka.persisted\` over the run): the difference waits in the Kafka backend's queue and, once that is full, in the spool (as shipped), which Kafka drains when the load eases: each round ends once the spool is empty, and the correctness checks count every record in the topics.`);
  o.push('', '### Half load, wrk -t2 -c200 paced', '');
  o.push('| contender | aimed req/s | done req/s | p50 ms | p99 ms | p99.9 ms | p99 per round ms | whole-process CPU µs per request |');
  o.push('|---|--:|--:|--:|--:|--:|---|--:|');
  for (const k of m.keys) {
    const r = rows[k];
    o.push(`| ${L[k]} | ${k === 'd2' ? m.calD?.targetRate : m.calC.targetRate} | ${f(r.paced.rps)} | ${fms(r.paced.p50)} | ${fms(r.paced.p99)} | ${fms(r.paced.p999)} | ${r.paced.p99All.map(fms).join(', ')} | ${f(r.paced.whole, 2)} |`);
  }
  o.push('', '### scratchd\'s CPU per request by thread (µs)', '');
  o.push('| contender, load | serving threads | main thread | node/V8 helpers | libuv pool | librdkafka | whole process | requests per main-thread wake-up |');
  o.push('|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const k of ['c2', 'd2', 'c1'].filter((x) => rows[x])) {
    for (const run of ['max', 'paced']) {
      const g = rows[k][run].g;
      o.push(`| ${L[k]}, ${run === 'max' ? 'maximum' : 'half'} load | ${f(g.serving, 2)} | ${f(g.main, 2)} | ${f(g['node/V8 helpers'], 2)} | ${f(g['libuv pool'], 2)} | ${f(g.librdkafka, 2)} | ${f(rows[k][run].whole, 2)} | ${run === 'max' ? f(rows[k].max.linesPerWake) : '–'} |`);
    }
  }
  o.push('', 'A main-thread wake-up is a voluntary context switch of the main thread (`/proc/PID/task/PID/status`) over the maximum-load run: it sleeps in epoll and wakes for relayed batches, pool completions and timers, so requests per wake-up is about the Lines each of its passes takes.');

  // Targets.
  const t = [];
  const add = (name, value, ok) => t.push(`| ${name} | ${value} | ${verdict(ok)} |`);
  add('1. (c2) ≥ 1.0× (b2) nginx `worker_processes 2`, req/s, same run', c2 && b2 ? `${fr(c2.max.rps / b2.max.rps)} (${f(c2.max.rps)} / ${f(b2.max.rps)})` : 'not measured', c2 && b2 ? c2.max.rps >= b2.max.rps : null);
  t.push(`| 1. the Go original (g2), GOMAXPROCS=2, beside them | ${g2 && c2 && b2 ? `(g2) ${f(g2.max.rps)} req/s: (c2)/(g2) ${fr(c2.max.rps / g2.max.rps)}, (g2)/(b2) ${fr(g2.max.rps / b2.max.rps)}; CPU per request (c2)/(g2) ${fr(c2.max.whole / g2.max.whole)}` : `not measured${opts.goReason ? `: ${opts.goReason}` : ''}`} | reported |`);
  const sOn = d2?.max.g.serving, sOff = c2?.max.g.serving;
  add('2. serving threads\' CPU per request, Kafka on (d2) ≤ 1.1× off (c2), maximum load', d2 && c2 ? `${fr(sOn / sOff)} (${f(sOn, 2)} / ${f(sOff, 2)} µs; at half load ${fr(d2.paced.g.serving / c2.paced.g.serving)})` : 'not measured', d2 && c2 ? sOn <= 1.1 * sOff : null);
  const kMain = d2 && c2 ? d2.max.g.main - c2.max.g.main : NaN;
  const kMainP = d2 && c2 ? d2.paced.g.main - c2.paced.g.main : NaN;
  // The subtraction prices a Kafka Line only if the Lines answered in the
  // window were also produced in it: when Kafka acknowledged far fewer, the
  // rest waited in the queue (or were dropped), unproduced, and the main
  // thread's CPU says nothing about them; then the half-load figure (which
  // also produces what the maximum-load run left queued) is the bound.
  const lagged = d2 && d2.max.acked < 0.9 * d2.max.rps;
  add('2. main-thread CPU per Kafka Line ≤ 2 µs ((d2) main thread − (c2) main thread, per Line)', d2 && c2 ? `${f(kMain, 2)} µs at maximum load (${f(d2.max.g.main, 2)} − ${f(c2.max.g.main, 2)})`
    + `${lagged ? `, **not a price**: Kafka acknowledged ${f(d2.max.acked)} of ${f(d2.max.rps)} Lines/s in that window, the rest waited in the Kafka queue or in librdkafka, or were dropped` : ''}; `
    + `${f(kMainP, 2)} µs at half load (${f(d2.paced.g.main, 2)} − ${f(c2.paced.g.main, 2)}, including what the maximum-load run left queued); librdkafka's own threads another ${f(d2.max.g.librdkafka, 2)} µs; node-rdkafka alone 6–7.5 µs per message (below)` : 'not measured',
  d2 && c2 ? (lagged ? kMainP <= 2 : kMain <= 2) : null);
  add('3. (c2) p99 at half load ≤ 1.0 ms', c2 ? `${fms(c2.paced.p99)} ms (rounds ${c2.paced.p99All.map(fms).join(', ')}; (b2) at the same load ${fms(b2?.paced.p99)} ms)` : 'not measured', c2 ? c2.paced.p99 <= 1000 : null);
  add('3. (d2) p99 at half load ≤ 1.0 ms', d2 ? `${fms(d2.paced.p99)} ms (rounds ${d2.paced.p99All.map(fms).join(', ')})` : 'not measured', d2 ? d2.paced.p99 <= 1000 : null);
  add('4. whole-process CPU per request, threads: 2 ≤ 1.15× threads: 1, same offered load (half load, unpinned)', c2 && c1 ? `${fr(c2.paced.whole / c1.paced.whole)} (${f(c2.paced.whole, 2)} / ${f(c1.paced.whole, 2)} µs at ${m.calC.targetRate} req/s aimed, done ${f(c2.paced.rps)} / ${f(c1.paced.rps)}); at maximum load ${fr(c2.max.whole / c1.max.whole)}` : 'not measured', c2 && c1 ? c2.paced.whole <= 1.15 * c1.paced.whole : null);
  t.push(`| 4. RSS per extra serving thread | ${c2 && c1 ? `${fmb(c2.rssIdle - c1.rssIdle)} MB after start, ${fmb(c2.rss - c1.rss)} MB at peak ((c2) − (c1): ${fmb(c2.rssIdle)} − ${fmb(c1.rssIdle)}, ${fmb(c2.rss)} − ${fmb(c1.rss)})` : 'not measured'} | reported |`);
  t.push('| 5. scaling model (a projection) | the table below | reported |');
  const bad = cks.filter((x) => !x.ok);
  add('6. correctness every round: Lines in files = `persisted` = wrk\'s 2xx; with Kafka every answered Line once in its topic', `${cks.length - bad.length} of ${cks.length} checks ok${bad.length ? `: ${bad.map((x) => x.text).join('; ')}` : ''}`, cks.length > 0 ? bad.length === 0 : null);
  o.push('', '### Targets (issue 24)', '', '| target | measured (medians of this run) | |', '|---|---|---|', ...t);
  if (t.some((x) => x.includes('**missed**'))) o.push('', 'What each miss costs, from profiles, and the experiment tried: "What the misses cost" at the end of this section.');

  // Amdahl.
  o.push('', '### Scaling model: a projection, not a measurement (this machine has 2 cores)', '');
  const model = [];
  for (const [k, name] of [['c2', 'file'], ['d2', 'file + Kafka']]) {
    const r = rows[k];
    if (!r) continue;
    const serial = r.max.g.main;
    const parallel = r.max.whole - serial; // serving threads, V8's and libuv's helpers, librdkafka
    model.push({ name, serial, parallel });
  }
  o.push('The serial part is the main thread: it unpacks every relayed batch and runs the backends, one writer per day file and the one librdkafka producer (produce calls and delivery reports); '
    + 'with Kafka also librdkafka\'s own threads, counted here as parallel (they are several, but one producer\'s broker thread does a share of them in series). '
    + 'Everything else, the serving threads with the whole request path and V8\'s and libuv\'s helpers, grows with the cores. From the maximum-load CPU of (c2) and (d2) in this run, per request: '
    + 'serial s (the main thread) and parallel p (all the rest). Amdahl\'s law gives n cores 1 / (s + p / n) req/s: the serial part as if it never overlapped the rest, the pessimistic reading. '
    + 'The main thread does overlap the serving threads (it takes one delivery while they answer the next requests), so the optimistic bound is min(n / (s + p), 1 / s): n cores\' worth of CPU, but never more than one core for the main thread. '
    + 'Both assume the server alone on the cores (no load generator), CPU per request independent of n (each extra thread costs a little, target 4) and no other limit (memory bandwidth, the NIC, the disk, the broker). '
    + 'The maximum-load figures are used because at full load batches are largest; at lower load the per-Line costs are higher (the half-load rows).', '');
  o.push('| path | serial s µs/Line | parallel p µs/req | serial share s / (s + p) | model | 2 cores | 4 cores | 8 cores | 16 cores | 32 cores | limit 1 / s |');
  o.push('|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|');
  for (const x of model) {
    const head = `| ${x.name} | ${f(x.serial, 2)} | ${f(x.parallel, 2)} | ${f((100 * x.serial) / (x.serial + x.parallel), 1)} %`;
    o.push(`${head} | Amdahl 1 / (s + p/n) | ${[2, 4, 8, 16, 32].map((n) => f(amdahl(x.serial, x.parallel, n))).join(' | ')} | ${f(1e6 / x.serial)} |`);
    o.push(`| ${x.name} | | | | overlapped min(n / (s + p), 1 / s) | ${[2, 4, 8, 16, 32].map((n) => f(pipeline(x.serial, x.parallel, n))).join(' | ')} | ${f(1e6 / x.serial)} |`);
  }
  o.push('', 'req/s projected for the server alone on n cores: a projection from this run\'s per-request costs, not a measurement (this machine has 2 cores, which the load generator shares).');
  if (d2 && d2.max.acked < 0.9 * d2.max.rps) {
    o.push('', `The Kafka rows understate the serial part: in this run's maximum-load window Kafka acknowledged ${f(d2.max.acked)} of the ${f(d2.max.rps)} Lines/s answered, so the main thread produced only part of them. `
      + `With node-rdkafka's own main-thread cost per message (bench/kafka-produce.mjs, 6–7.5 µs, see below) s is about ${f(c2.max.g.main + 6, 1)}–${f(c2.max.g.main + 7.5, 1)} µs, and the limit ${f(1e6 / (c2.max.g.main + 7.5))}–${f(1e6 / (c2.max.g.main + 6))} Lines/s whatever the cores.`);
  }

  o.push('', '### Rounds', '');
  o.push('| round | contender | max req/s | max p99 ms | CPU µs/req (whole) | serving µs/req | main µs/Line | paced req/s | paced p99 ms | RSS after start / peak MB | Lines / wrk 2xx | topic records |');
  o.push('|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|');
  for (const r of m.results) {
    o.push(`| ${r.round} | ${r.key} | ${f(r.max.rps)} | ${fms(r.max.p99)} | ${f(perReq(r.max), 2)} | ${r.max.cpu.serving !== undefined ? f(perReq(r.max, 'serving'), 2) : '–'} | ${r.max.cpu.main !== undefined ? f(perReq(r.max, 'main'), 2) : '–'} | ${f(r.paced.rps)} | ${fms(r.paced.p99)} | ${fmb(r.rssIdle)} / ${fmb(r.rss)} | ${r.lines ?? '–'} / ${r.expectedOk} | ${r.topic ?? '–'} |`);
  }
  o.push('', 'Correctness checks:', '', ...cks.map((c) => `- ${c.ok ? 'ok' : '**FAILED**'}: ${c.text}`));
  // The hand-written part: what the profiles of the misses showed, and the experiments.
  if (existsSync(opts.notesFile)) o.push('', readFileSync(opts.notesFile, 'utf8').trim());
  return { markdown: o.join('\n'), checks: cks, rows };
}

function h2(opts) {
  return `The pinned rows above run scratchd with \`"threads": 1\`; here (c2)/(d2) run \`"threads": 2\` and (c1) \`"threads": 1\` unpinned.`;
}
