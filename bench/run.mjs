#!/usr/bin/env node
// scratchd benchmark: `npm run bench` (inside the trixie chroot).
//
// Contenders, each measured in every round, the order rotating per round:
//   (a) ceiling  — bench/ceiling.mjs, a bare uWebSockets.js app answering the GIF
//   (b) nginx    — Debian nginx, empty_gif, buffered JSON access_log, one worker
//   (c) scratchd — file backend only
//   (d) scratchd — file + Kafka backends with a real broker (when available)
//   (g) Go       — bench/go, the original design in Go net/http (when Go is installed)
// Each server is pinned to core 0 (taskset -c 0), wrk to core 1; scratchd's
// config says "threads": 1 (one serving thread + the main thread). Per server and
// round: start, 1 s warm-up, `wrk -t1 -c64` at full speed, then a paced run at
// half of scratchd's maximum rate (the (e) row for scratchd, and the same offered
// load for (a) and (b) as reference), stop. Figures are medians over rounds and
// ratios to (a) and (b) of the same run; the machine is shared and noisy.
//
// After the rounds: a latency timeline of (c) and (d) at half load
// (bench/timeline.mjs: where the tail comes from), (d) during a spool drain
// (issue 14: half-load p99 while the Kafka spool drains vs the same process
// idle, see runDrain), two server threads vs one (bench/scale/: CPU per
// request) and, nothing pinned, serving threads on both cores (issue 24's
// targets, bench/threads.mjs: (c)/(d) at "threads": 2 against nginx
// worker_processes 2 and Go at GOMAXPROCS=2, wrk -t2; --only threads).
//
// Options: --rounds N (3) --duration S (8) --paced-duration S (8)
//          --connections N (64) --paced-connections N (200) --only a,b,c,d,g,drain,threads
//          --drain S (8, 0: skip; half-load seconds idle and draining, per round)
//          --drain-fill S (10; seconds at maximum load with the broker down)
//          --drain-rate R (0: half of (d)'s calibrated maximum; else wrk asks for R req/s)
//          --calibration S (5) --timeline S (10, 0: skip) --scale S (8, 0: skip)
//          --baseline DIR (a build by bench/build-rev.sh, as (c0)/(d0))
//          --alt-flags="NODE FLAGS [NAME=VALUE…]" (this build with other node flags and
//            environment than bench/production.mjs's, as (c1)/(d1))
//          --out FILE (BENCHMARKS.md) --no-write --keep (keep the temp dir)
//          --threads-from FILE (a kept results.json: render its serving-threads section
//            into --out again, e.g. after editing bench/threads-notes.md; measures nothing)
// A smoke test of the runner itself (not a measurement):
//   node bench/run.mjs --rounds 1 --duration 1 --paced-duration 1 --calibration 1 --timeline 2 --scale 1 --drain 3 --drain-fill 3 --no-write
// Only the drain measurement (one round):
//   node bench/run.mjs --only drain --rounds 1 --calibration 2 --drain 4 --drain-fill 4 --no-write
// Only the serving threads (its own section of --out is replaced, the rest kept;
// SCRATCHD_BENCH_GO_BINARY=a bench/go build when the chroot has no Go):
//   node bench/run.mjs --only threads --rounds 3 --duration 6 --paced-duration 6
// A CPU profile of scratchd through a drain round (V8's .cpuprofile; bench/notes.md
// says what it showed): SCRATCHD_BENCH_DRAIN_FLAGS="--cpu-prof --cpu-prof-dir=DIR" before that.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildClient, runTimeline, threadCpu, timelineMethod } from './timeline.mjs';
import { measureScale } from './scale/measure.mjs';
import { scratchdEnv, scratchdFlags } from './production.mjs';
import { measureThreads, renderThreads } from './threads.mjs';
import { readStats } from './stats.mjs';
import { startKafkaIfAvailable, warmBroker, WARM_BROKER } from './broker.mjs';
import { checkLines, countNginxLines, drainChecks, roundChecks } from './checks.mjs';
import { scratchdConfig, nginxConf, DRAIN_RAM_QUEUE } from './configs.mjs';
import { fmtCpu, fmtMB, fmtMs, fmtN, fmtRatio, ms } from './format.mjs';
import { calibrate, luaScript, wrk } from './load.mjs';
import { childPids, cpuSeconds, freePort, spawnServer, stopServer, vmHWM, waitReady } from './servers.mjs';
import { buildGo, ensureGo, ensureTools, machine } from './setup.mjs';
import { expectedValues, FLAVORS, makeRequests } from './traffic.mjs';
import { benchDir, log, median, node, readJson, root, sleep, started } from './util.mjs';

process.chdir(root);

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    'paced-duration': { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    'paced-connections': { type: 'string', default: '200' },
    only: { type: 'string', default: 'a,b,c,d,g,drain,threads' },
    calibration: { type: 'string', default: '5' },
    timeline: { type: 'string', default: '10' },
    scale: { type: 'string', default: '8' },
    drain: { type: 'string', default: '8' },
    'drain-fill': { type: 'string', default: '10' },
    'drain-rate': { type: 'string', default: '0' },
    out: { type: 'string', default: 'BENCHMARKS.md' },
    'no-write': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'prep-only': { type: 'string' },
    baseline: { type: 'string' },
    'alt-flags': { type: 'string' },
    'threads-from': { type: 'string' },
  },
});
const ROUNDS = Number(opt.rounds);
const DURATION = Number(opt.duration);
const PACED_DURATION = Number(opt['paced-duration']);
const CONNS = Number(opt.connections);
const PACED_CONNS = Number(opt['paced-connections']);
const ONLY = new Set(opt.only.split(','));
const CALIBRATION = Number(opt.calibration);
const TIMELINE = Number(opt.timeline);
const SCALE = Number(opt.scale);
const DRAIN = Number(opt.drain);
const DRAIN_FILL = Number(opt['drain-fill']);
const DRAIN_RATE = Number(opt['drain-rate']);
/** The run's settings, as the parts read them (ctx.settings). */
const settings = { ROUNDS, DURATION, PACED_DURATION, CONNS, PACED_CONNS, CALIBRATION, TIMELINE, SCALE, DRAIN, DRAIN_FILL, DRAIN_RATE };

// ----------------------------------------------------------- contenders ----

async function runContender(key, ctx, round) {
  const c = CONTENDERS[key];
  const gcFile = join(ctx.dir, `gc-${key}-${round}.json`);
  const server = await c.start(ctx, gcFile);
  const result = { key, round };
  try {
    await waitReady(c.port(ctx), FLAVORS[0].host, server);
    const pid = server.proc.pid;
    const warm = await wrk(c.port(ctx), { seconds: 1, conns: CONNS, script: ctx.script });
    if (c.node) server.proc.kill('SIGUSR2'); // GC stats: forget the warm-up
    const pids = () => [pid, ...(c.node ? [] : childPids(pid))];
    const cpu0 = pids().reduce((t, p) => t + cpuSeconds(p), 0);
    const max = await wrk(c.port(ctx), { seconds: DURATION, conns: CONNS, script: ctx.script });
    const cpu1 = pids().reduce((t, p) => t + cpuSeconds(p), 0);
    // CPU per request is what a change to scratchd moves; unlike req/s it
    // hardly depends on how much of core 0 the other tenants left us.
    max.cpuUsPerReq = ((cpu1 - cpu0) * 1e6) / max.requests;
    max.coreShare = (cpu1 - cpu0) / (max.duration_us / 1e6);
    if (c.node) server.proc.kill('SIGUSR2'); // GC stats of the maximum-load run
    result.max = max;
    result.rss = c.rss(pid);
    let paced = null;
    if (ctx.pacedRate > 0) {
      paced = await wrk(c.port(ctx), { seconds: PACED_DURATION, conns: PACED_CONNS, script: ctx.script, rate: ctx.pacedRate });
      result.paced = paced;
    }
    result.rssEnd = c.rss(pid);
    // + 1: the readiness probe (GET /track?ready=1) is a Line too.
    result.expectedOk = warm.ok + max.ok + (paced?.ok ?? 0) + 1;
    result.inFlightMax = CONNS * 2 + (paced ? PACED_CONNS : 0);
  } finally {
    result.exit = await c.stop(server, ctx);
  }
  if (c.node) {
    result.gcMax = readJson(`${gcFile}.1`);
    result.gcPaced = readJson(gcFile);
  }
  if (c.check) Object.assign(result, c.check(ctx));
  if (c.drained) {
    const m = /^\{.*"msg":"drained".*\}$/m.exec(server.output());
    result.drained = m ? JSON.parse(m[0]).backends : null;
  }
  return result;
}

// ---------------------------------------------------- (d) during a drain ----

/** scratchd's /stats `kafka_spool` object (null when the spool is off or not open yet). */
async function spoolStats(statsPort) {
  return (await readStats(statsPort)).kafka_spool ?? null;
}

async function waitSpool(statsPort, what, ok, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await spoolStats(statsPort).catch(() => null);
    if (s !== null && ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s (kafka_spool ${JSON.stringify(s)})`);
    await sleep(250);
  }
}

/**
 * The process's CPU over a window, per group of threads (the event loop,
 * librdkafka's, libuv's pool, V8's): call at the start, call what it returns
 * at the end; ms of CPU per second of the window.
 */
function cpuWindow(pid) {
  const from = threadCpu(pid);
  const at = performance.now();
  return () => {
    const to = threadCpu(pid);
    const seconds = (performance.now() - at) / 1000;
    const groups = {};
    for (const [name, ns] of to) {
      const g = name === 'event loop' ? 'event loop' : name.startsWith('rdk') ? 'librdkafka' : name.startsWith('libuv') ? 'libuv pool' : 'other';
      groups[g] = (groups[g] ?? 0) + (ns - (from.get(name) ?? 0)) / 1e6 / seconds;
    }
    return groups;
  };
}

/**
 * Issue 14: does a spool drain slow the request path? One scratchd process
 * (file + Kafka, spool on, librdkafka's queue DRAIN_RAM_QUEUE):
 *   1. idle: broker up, spool empty, DRAIN s at half load: half of (d)'s own
 *      maximum, calibrated just before the drain rounds (ctx.drainCal);
 *   2. the broker SIGKILLed, DRAIN_FILL s at maximum load fill the spool;
 *   3. the broker restarted (same port and data); once the drainer has
 *      delivered its first records, DRAIN s at the same half load.
 * The figure is p99 of 3 over p99 of 1, in the same process and run.
 * /stats `kafka_spool` is read every second of 3: how many records drained in
 * the window and whether the spool still held records at its end, so the
 * reader sees the whole window was a drain.
 */
async function runDrain(ctx, kafka, round) {
  const { ports } = ctx;
  rmSync(join(ctx.dir, 'log'), { recursive: true, force: true });
  rmSync(join(ctx.dir, 'spool'), { recursive: true, force: true });
  const extra = (process.env.SCRATCHD_BENCH_DRAIN_FLAGS ?? '').split(' ').filter(Boolean);
  const server = spawnServer('scratchd', node, [...scratchdFlags, ...extra, join(root, 'dist/main.js'), '--config', ctx.drainConfigFile], scratchdEnv);
  const r = { round };
  try {
    await waitReady(ports.c, FLAVORS[0].host, server);
    await waitSpool(ports.stats, 'the spool opened', (s) => s.ready === 1, 30_000);
    // Warm-up at the measured half load, not at maximum: at maximum load the
    // small RAM queue would already spill, and idle must mean a spool never used.
    await wrk(ports.c, { seconds: 1, conns: PACED_CONNS, script: ctx.script, rate: ctx.drainCal.pacedRate });
    r.warmSpilled = (await spoolStats(ports.stats)).spilled_total;
    await waitSpool(ports.stats, 'the spool empty after the warm-up', (s) => s.records === 0 && s.spilling === 0, 120_000);
    const idle0 = await spoolStats(ports.stats);
    const idleCpu = cpuWindow(server.proc.pid);
    r.idle = await wrk(ports.c, { seconds: DRAIN, conns: PACED_CONNS, script: ctx.script, rate: ctx.drainCal.pacedRate });
    const idle1 = await spoolStats(ports.stats);
    r.idleCpu = idleCpu();
    r.idleSpilled = idle1.spilled_total - idle0.spilled_total;

    await kafka.command('kill');
    r.fill = await wrk(ports.c, { seconds: DRAIN_FILL, conns: CONNS, script: ctx.script });
    const filled = await waitSpool(ports.stats, 'the fill spooled', (s) => s.spilling === 1 && s.records > 0, 30_000);
    r.filledRecords = filled.records;
    r.filledBytes = filled.bytes;
    const restartAt = Date.now();
    await kafka.command('restart');
    const first = await waitSpool(ports.stats, 'the drain started', (s) => s.drained_total > filled.drained_total, 60_000);
    r.restartSeconds = (Date.now() - restartAt) / 1000;

    const samples = [first];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sleep(1000);
        if (sampling) samples.push(await spoolStats(ports.stats).catch(() => null));
      }
    })();
    const drainCpu = cpuWindow(server.proc.pid);
    r.drain = await wrk(ports.c, { seconds: DRAIN, conns: PACED_CONNS, script: ctx.script, rate: ctx.drainCal.pacedRate });
    r.drainCpu = drainCpu();
    sampling = false;
    await sampler;
    const last = await spoolStats(ports.stats);
    samples.push(last);
    r.drainedInWindow = last.drained_total - first.drained_total;
    r.recordsAtStart = first.records;
    r.recordsAtEnd = last.records;
    // Seconds into the window at which the spool was first seen empty (null: never).
    const emptyAt = samples.findIndex((s) => s !== null && s.records === 0 && s.spilling === 0);
    r.emptiedAfter = emptyAt < 0 ? null : Math.min(emptyAt, DRAIN);
    r.dropped = Object.values(last.dropped_total).reduce((a, b) => a + b, 0);
    // The drainer's share of the loop over the window (src/kafka/drain-pace.ts).
    r.duty = median(samples.filter((s) => s !== null && s.records > 0).map((s) => s.drain_duty));
  } catch (err) {
    err.serverOutput = server.output().slice(-4000);
    throw err;
  } finally {
    r.exit = await stopServer(server);
  }
  r.ratio = r.drain && r.idle ? r.drain.p99 / r.idle.p99 : NaN;
  return r;
}

function summarizeDrain(drains) {
  const ok = drains.filter((d) => d.drain && d.idle);
  if (ok.length === 0) return null;
  const idle = median(ok.map((d) => d.idle.p99));
  const during = median(ok.map((d) => d.drain.p99));
  // wrk paces each connection by its own answers: a server that slows down
  // gets fewer requests, not longer latencies only. So the drain must also
  // keep the rate done (within 10 % of idle's) to count as not slowing down.
  const kept = median(ok.map((d) => d.drain.rps / d.idle.rps));
  return {
    idle, during, ratio: during / idle, kept, met: during <= 2 * idle && kept >= 0.9,
    wholeWindow: ok.every((d) => d.emptiedAfter === null),
    drained: median(ok.map((d) => d.drainedInWindow)),
    errors: ok.reduce((n, d) => n + d.idle.status + d.drain.status + d.idle.socketErrors + d.drain.socketErrors, 0),
  };
}

function renderDrain(drains, ctx) {
  const s = summarizeDrain(drains);
  const aim = Number.isFinite(ctx.drainCal.rps) ? `half of (d)'s own calibrated ${fmtN(ctx.drainCal.rps)} req/s` : 'a fixed rate, `--drain-rate`';
  const out = [`### (d) during a spool drain (issue 14): ${ctx.drainCal.targetRate} req/s aimed at (${aim}), ${DRAIN} s idle then ${DRAIN} s draining, per round`, '',
    Number.isFinite(ctx.drainCal.rps)
      ? `(Half load here is half of what (d), file + Kafka, sustains: measured in this run just before the drain rounds, ${CALIBRATION} s at maximum load as for (e)'s calibration, wrk asked for ${ctx.drainCal.pacedRate} req/s so that about ${ctx.drainCal.targetRate} are done. (e)'s half load is half of the file backend's maximum, above half of (d)'s.)`
      : `(The offered rate is fixed by \`--drain-rate\`, for comparing builds at one load; wrk asked for ${ctx.drainCal.pacedRate} req/s.)`, ''];
  out.push(`One scratchd process per round, file + Kafka with the spool on (\`backends.kafka.spool\`) and librdkafka's RAM queue at ${DRAIN_RAM_QUEUE} messages (the drainer keeps at most half of it unreported): `
    + `first ${DRAIN} s at half load with the broker up and the spool empty (idle), then the broker SIGKILLed and ${DRAIN_FILL} s at maximum load (\`wrk -c${CONNS}\`) fill the spool, `
    + `then the broker restarted on the same port and data and, as soon as the drainer has delivered its first records, ${DRAIN} s at the same half load while the spool drains. `
    + 'New Lines go to the spool\'s tail until it is empty, so the drainer also carries the load of the window itself. '
    + 'Records drained are from `/stats` `kafka_spool.drained_total` over the window; "spool at end" > 0 means the whole window was a drain. '
    + 'The drainer is paced by the event loop\'s utilization (src/kafka/drain-pace.ts: the whole loop aimed at 0.8, the drainer given the rest); "drainer duty" is the median of `kafka_spool.drain_duty`, the share of the loop its slices may take, over the window.', '');
  out.push('| round | idle p99 ms | draining p99 ms | ratio | idle p50 ms | draining p50 ms | draining p99.9 ms | req/s done idle / draining | spooled by the fill | records drained in the window | spool at start / end of window | drainer duty | broker back after s | non-2xx + socket errors |');
  out.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|');
  for (const d of drains) {
    if (!d.drain || !d.idle) {
      out.push(`| ${d.round} | failed: ${d.error ?? '?'} |||||||||||||`);
      continue;
    }
    out.push(`| ${d.round} | ${fmtMs(d.idle.p99)} | ${fmtMs(d.drain.p99)} | ${fmtRatio(d.ratio)} | ${fmtMs(d.idle.p50)} | ${fmtMs(d.drain.p50)} | ${fmtMs(d.drain.p999)} | ${fmtN(d.idle.rps)} / ${fmtN(d.drain.rps)} | ${d.filledRecords} | ${d.drainedInWindow} | ${d.recordsAtStart} / ${d.recordsAtEnd}${d.emptiedAfter === null ? '' : ` (empty after ~${d.emptiedAfter} s)`} | ${fmtN(d.duty, 2)} | ${fmtN(d.restartSeconds, 1)} | ${d.idle.status + d.drain.status + d.idle.socketErrors + d.drain.socketErrors} |`);
  }
  if (s) {
    out.push('', `Median p99: idle ${fmtMs(s.idle)} ms, during the drain ${fmtMs(s.during)} ms: **${fmtRatio(s.ratio)}**; requests done during the drain ${fmtRatio(s.kept)} idle's `
      + '(wrk paces each connection by its answers, so a slower server is offered less: the rate must hold too, within 10 %). '
      + `Target (p99 ≤ 2× idle, rate held): ${s.met ? 'met' : '**not met**'}`
      + `${s.wholeWindow ? '' : '; in at least one round the spool emptied before the window ended (raise --drain-fill)'}.`);
  }
  return out.join('\n');
}

const preload = ['--import', join(benchDir, 'gc-preload.mjs')];

const CONTENDERS = {
  a: {
    label: '(a) ceiling: bare uWS',
    node: true,
    port: (ctx) => ctx.ports.a,
    start: (ctx, gc) => spawnServer('ceiling', node, [...preload, join(benchDir, 'ceiling.mjs'), String(ctx.ports.a)], { SCRATCHD_BENCH_GC: gc }),
    stop: (s) => stopServer(s),
    rss: (pid) => vmHWM(pid),
  },
  b: {
    label: '(b) nginx empty_gif + JSON access_log',
    node: false,
    port: (ctx) => ctx.ports.b,
    start: (ctx) => {
      rmSync(join(ctx.dir, 'nginx-access.log'), { force: true });
      return spawnServer('nginx', 'nginx', ['-c', ctx.nginxConf, '-p', ctx.dir, '-e', join(ctx.dir, 'nginx-error.log')]);
    },
    // SIGQUIT: graceful, flushes the access-log buffer.
    stop: (s) => stopServer(s, 'SIGQUIT'),
    rss: (pid) => [pid, ...childPids(pid)].reduce((sum, p) => sum + vmHWM(p), 0),
    check: (ctx) => countNginxLines(join(ctx.dir, 'nginx-access.log')),
  },
  c: scratchd('(c) scratchd, file backend', root, 'configFile'),
  d: scratchd('(d) scratchd, file + Kafka', root, 'kafkaConfigFile'),
  g: {
    label: '(g) Go net/http, original design',
    node: false,
    drained: true,
    port: (ctx) => ctx.ports.g,
    start: (ctx) => {
      rmSync(join(ctx.dir, 'go-log'), { recursive: true, force: true });
      return spawnServer('scratchd-go', ctx.goBinary, ['-listen', `127.0.0.1:${ctx.ports.g}`, '-dir', join(ctx.dir, 'go-log'),
        ...FLAVORS.flatMap((f) => ['-flavor', `${f.name}=${f.host},${f.timeZone}`])]);
    },
    stop: (s) => stopServer(s),
    rss: (pid) => vmHWM(pid),
    check: (ctx) => checkLines(join(ctx.dir, 'go-log'), ctx.expected),
  },
};

// --baseline DIR: scratchd as built by bench/build-rev.sh, measured alongside
// (c) and (d) in every round, as (c0) and (d0), for before/after ratios of a change.
if (opt.baseline) {
  const at = opt.baseline.replace(/.*scratchd-rev-/, 'at ');
  CONTENDERS.c0 = scratchd(`(c0) scratchd, file backend ${at}`, opt.baseline, 'configFile');
  CONTENDERS.d0 = scratchd(`(d0) scratchd, file + Kafka ${at}`, opt.baseline, 'kafkaConfigFile');
}

// --alt-flags "FLAGS": the same build started with other node flags instead of
// the production ones (bench/production.mjs), e.g. "--max-semi-space-size=1",
// as (c1) and (d1); words of the form NAME=VALUE are its environment instead
// of the production one (e.g. MALLOC_ARENA_MAX=4; none: no MALLOC_ARENA_MAX).
if (opt['alt-flags'] !== undefined) {
  const words = opt['alt-flags'].split(' ').filter(Boolean);
  const isEnv = (w) => /^[A-Z_][A-Z0-9_]*=/.test(w);
  const flags = words.filter((w) => !isEnv(w));
  const env = Object.fromEntries(words.filter(isEnv).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  CONTENDERS.c1 = scratchd(`(c1) scratchd, file backend, node ${opt['alt-flags']}`, root, 'configFile', flags, env);
  CONTENDERS.d1 = scratchd(`(d1) scratchd, file + Kafka, node ${opt['alt-flags']}`, root, 'kafkaConfigFile', flags, env);
}

/** scratchd from build directory `build`, on the config file named by `ctx[config]`. */
function scratchd(label, build, config, flags = scratchdFlags, env = scratchdEnv) {
  return {
    label,
    node: true,
    drained: true,
    port: (ctx) => ctx.ports.c,
    start: (ctx, gc) => {
      rmSync(join(ctx.dir, 'log'), { recursive: true, force: true });
      return spawnServer('scratchd', node, [...flags, ...preload, join(build, 'dist/main.js'), '--config', ctx[config]], { ...env, SCRATCHD_BENCH_GC: gc });
    },
    stop: (s) => stopServer(s),
    rss: (pid) => vmHWM(pid),
    check: (ctx) => checkLines(join(ctx.dir, 'log'), ctx.expected),
  };
}

// ------------------------------------------------------------------ main ----

async function main() {
  if (opt['threads-from']) {
    const { m, meta, opts } = JSON.parse(readFileSync(opt['threads-from'], 'utf8')).threads.raw;
    const t = renderThreads(m, meta, { ...opts, notesFile: join(benchDir, 'threads-notes.md') });
    if (opt['no-write']) process.stdout.write(t.markdown + '\n');
    else replaceSection(resolve(root, opt.out), t.markdown);
    return;
  }
  log(`scratchd benchmark: ${ROUNDS} rounds × (1 s warm-up + ${DURATION} s max + ${PACED_DURATION} s paced) per contender`);
  ensureTools();
  const info = machine();
  log(`machine: ${info.nproc} cores, ${info.cpu}, ${info.kernel}, node ${info.node}, load ${info.load}`);
  if (Number(info.nproc) < 2) log('warning: fewer than 2 cores; server and load generator share a core');

  const dir = opt['prep-only'] ?? mkdtempSync(join(tmpdir(), 'scratchd-bench-'));
  const requests = makeRequests();
  const script = join(dir, 'track.lua');
  writeFileSync(script, luaScript(requests));
  // The same requests, raw, for bench/go/client (the latency timeline).
  writeFileSync(join(dir, 'requests.json'), JSON.stringify(requests.map((r) => `GET ${r.path} HTTP/1.1\r\nHost: ${r.host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: image/avif,image/webp,*/*\r\n\r\n`)));
  const expected = new Set(['ready=1', ...requests.map((r) => r.path.slice('/track?'.length))].map((q) => JSON.stringify(expectedValues(q))));
  const avgQuery = requests.reduce((s, r) => s + r.path.length - 7, 0) / requests.length;
  log(`traffic: ${requests.length} distinct queries, ${avgQuery.toFixed(0)} bytes on average, hosts ${FLAVORS.map((f) => f.host).join(', ')}`);

  const ports = { a: await freePort(), b: await freePort(), c: await freePort(), g: await freePort(), stats: await freePort() };
  const ctx = { dir, script, expected, ports, pacedRate: 0, settings };
  ctx.nginxConf = nginxConf(dir, ports.b);
  ctx.configFile = scratchdConfig(dir, ports.c, ports.stats, null);
  ctx.configFile2 = scratchdConfig(dir, ports.c, ports.stats, null, false, 2);
  ctx.nginx2Conf = nginxConf(dir, ports.b, 2);
  if (opt['prep-only']) return; // bench/profile.mjs: only the traffic and the config

  let kafkaInfo = { kafka: null, reason: 'not requested (--only)' };
  const wantDrain = ONLY.has('drain') && DRAIN > 0;
  const wantThreads = ONLY.has('threads');
  if (ONLY.has('d') || wantDrain || wantThreads) {
    log('(d): looking for the Kafka backend and broker harness');
    kafkaInfo = await startKafkaIfAvailable();
    if (kafkaInfo.kafka) {
      ctx.kafkaConfigFile = scratchdConfig(dir, ports.c, ports.stats, kafkaInfo.kafka);
      ctx.drainConfigFile = scratchdConfig(dir, ports.c, ports.stats, kafkaInfo.kafka, true);
      ctx.kafkaConfigFile2 = scratchdConfig(dir, ports.c, ports.stats, kafkaInfo.kafka, false, 2);
      ctx.brokers = kafkaInfo.kafka.brokers;
      log(`(d): broker at ${kafkaInfo.kafka.brokers}`);
    } else log(`(d): not available — ${kafkaInfo.reason}`);
  }
  let goInfo = { binary: null, reason: 'not requested (--only)' };
  if (ONLY.has('g') || wantThreads) {
    goInfo = buildGo(dir);
    if (goInfo.binary) {
      ctx.goBinary = goInfo.binary;
      log(`(g): ${goInfo.version}`);
    } else log(`(g): skipped — ${goInfo.reason}`);
  }
  const keys = ['a', 'b', 'c', 'd', 'g'].filter((k) => ONLY.has(k) && (k !== 'd' || kafkaInfo.kafka) && (k !== 'g' || goInfo.binary));
  if (opt.baseline) {
    if (!existsSync(join(opt.baseline, 'dist/main.js'))) {
      log(`building the baseline in ${opt.baseline}`);
      execFileSync('npx', ['tsc', '-p', '.'], { stdio: 'inherit', cwd: opt.baseline });
    }
    keys.push(...keys.filter((k) => k === 'c' || k === 'd').map((k) => `${k}0`));
  }
  if (opt['alt-flags'] !== undefined) keys.push(...keys.filter((k) => k === 'c' || k === 'd').map((k) => `${k}1`));

  // Calibration: scratchd's maximum rate sets the paced rate for every round.
  if (keys.length > 0) {
    log(`calibrating: scratchd at maximum load for ${CALIBRATION} s`);
    const cal = await calibrate(ctx, ctx.configFile);
    ctx.calibratedRps = cal.rps;
    ctx.targetRate = cal.targetRate;
    ctx.pacedRate = cal.pacedRate;
    log(`calibrated: ${ctx.calibratedRps.toFixed(0)} req/s; paced runs aim at ${ctx.targetRate} req/s (wrk asked for ${ctx.pacedRate}) over ${PACED_CONNS} connections`);
  }

  if (kafkaInfo.kafka) {
    // A broker just started acknowledges slowly for its first second or so
    // under load (its JVM still compiling): Lines then pile up in librdkafka
    // (~28 000 in a probe) and that (d) round's peak RSS and GC pauses
    // measure the cold broker (bench/notes.md, target 5). Production brokers
    // are warm, so the broker gets its first load here, unmeasured.
    log(`warming the broker up: (d) at maximum load for ${WARM_BROKER} s, not measured`);
    await warmBroker(ctx);
  }

  const results = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = keys.map((_, i) => keys[(i + round - 1) % keys.length]);
    for (const key of order) {
      log(`round ${round}/${ROUNDS}: ${CONTENDERS[key].label}`);
      const r = await runContender(key, ctx, round);
      results.push(r);
      const gc = r.gcMax ? `, GC max ${r.gcMax.maxMs.toFixed(2)} ms` : '';
      const lines = r.lines !== undefined ? `, lines ${r.lines} vs 2xx ${r.expectedOk} (bad ${r.bad})` : '';
      log(`  max ${r.max.rps.toFixed(0)} req/s, ${r.max.cpuUsPerReq.toFixed(1)} µs CPU/req, core share ${(100 * r.max.coreShare).toFixed(0)}%, p50 ${ms(r.max.p50)} p99 ${ms(r.max.p99)} p99.9 ${ms(r.max.p999)} ms, non-2xx ${r.max.status}, `
        + `socket errors ${r.max.socketErrors}; paced ${r.paced ? `${r.paced.rps.toFixed(0)} req/s p50 ${ms(r.paced.p50)} p99 ${ms(r.paced.p99)} p99.9 ${ms(r.paced.p999)} ms` : '-'}; `
        + `RSS ${(r.rss / 2 ** 20).toFixed(1)} MB${gc}${lines}`);
    }
  }
  // Where the tail comes from: (c) and (d) at the half-load rate, every request timed.
  const timelines = [];
  if (TIMELINE > 0 && ctx.targetRate > 0 && (keys.includes('c') || keys.includes('d'))) {
    try {
      if (!ensureGo()) throw new Error('Go is not installed: bench/go/client, the load generator that times every request, needs it');
      const client = buildClient(dir);
      for (const k of ['c', 'd'].filter((x) => keys.includes(x))) {
        log(`timeline: ${CONTENDERS[k].label} at ${ctx.targetRate} req/s for ${TIMELINE} s`);
        rmSync(join(dir, 'log'), { recursive: true, force: true });
        const t = await runTimeline({
          label: CONTENDERS[k].label, client, requestsFile: join(dir, 'requests.json'), rate: ctx.targetRate, conns: PACED_CONNS,
          seconds: TIMELINE, dir, nodeFlags: scratchdFlags, kafka: k === 'd',
          server: { args: [join(root, 'dist/main.js'), '--config', k === 'c' ? ctx.configFile : ctx.kafkaConfigFile], port: ports.c, host: FLAVORS[0].host },
        });
        timelines.push(t);
        log(`  p99 ${t.stats.p99.toFixed(3)} ms; slowest 1 %: ${t.stats.cls.tail.gc} of ${t.stats.cls.tail.n} overlap a GC pause, ${t.stats.cls.tail.write} a write; p99 without either ${t.stats.p99Neither.toFixed(3)} ms`);
      }
    } catch (err) {
      log(`timeline: skipped — ${err.message.split('\n')[0]}`);
    }
  }
  // Issue 24: serving threads on both cores, before the drain (which kills
  // and restarts the broker: a restarted broker is a cold JVM again).
  let threads = null;
  if (wantThreads) {
    const loadAtStart = readFileSync('/proc/loadavg', 'utf8').trim();
    // Nothing pinned here: the broker (its helper and JVM, every thread) may use both cores too.
    const brokerOn = (cpus) => {
      const walk = (pid) => [pid, ...childPids(pid).flatMap(walk)];
      for (const pid of kafkaInfo.kafka ? walk(kafkaInfo.kafka.pid) : []) spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    };
    brokerOn('0,1');
    const m = await measureThreads({
      root, node, scratchdFlags, scratchdEnv, FLAVORS, log, spawnServer, stopServer, waitReady, wrk, checkLines, countNginxLines, childPids, vmHWM,
      ROUNDS, DURATION, PACED_DURATION, CONNS, PACED_CONNS, CALIBRATION,
    }, ctx);
    const meta = {
      date: new Date().toISOString().slice(0, 16).replace('T', ' '), commit: info.commit, load: loadAtStart,
      loadEnd: readFileSync('/proc/loadavg', 'utf8').trim(),
    };
    const opts = {
      ROUNDS, DURATION, PACED_DURATION, CONNS, PACED_CONNS, CALIBRATION, scratchdEnv, scratchdFlags, goReason: goInfo.reason, kafkaReason: kafkaInfo.reason,
    };
    brokerOn('1');
    threads = renderThreads(m, meta, { ...opts, notesFile: join(benchDir, 'threads-notes.md') });
    threads.raw = { m, meta, opts };
  }

  // Issue 14: (d) during a spool drain vs idle, after everything else that
  // uses the broker, since it kills and restarts it.
  const drains = [];
  let drainReason = wantDrain ? null : 'skipped (--drain 0 or not in --only)';
  if (wantDrain && !kafkaInfo.kafka) drainReason = `no broker: ${kafkaInfo.reason}`;
  else if (wantDrain) {
    // Half load for this measurement is half of what (d) itself sustains,
    // not (e)'s half of the file backend's maximum: the Kafka backend costs
    // CPU per request, so the file backend's half is well above (d)'s.
    log(`calibrating (d) for the drain: file + Kafka at maximum load for ${CALIBRATION} s`);
    // --drain-rate R: the same offered rate for runs compared with each other
    // (A/B of the drainer), instead of each run's own noisy calibration.
    ctx.drainCal = DRAIN_RATE > 0 ? { rps: NaN, targetRate: DRAIN_RATE, pacedRate: DRAIN_RATE } : await calibrate(ctx, ctx.kafkaConfigFile).catch((err) => {
      drainReason = `calibrating (d) failed: ${err.message.split('\n')[0]}`;
      log(`  ${drainReason}`);
      return null;
    });
    if (ctx.drainCal) log(`calibrated (d): ${ctx.drainCal.rps.toFixed(0)} req/s; the drain rounds aim at ${ctx.drainCal.targetRate} req/s (wrk asked for ${ctx.drainCal.pacedRate})`);
    for (let round = 1; round <= ROUNDS && ctx.drainCal; round++) {
      log(`drain round ${round}/${ROUNDS}: (d) with the spool, ${DRAIN} s idle, broker killed for ${DRAIN_FILL} s at maximum load, ${DRAIN} s while draining, at ${ctx.drainCal.targetRate} req/s`);
      try {
        const d = await runDrain(ctx, kafkaInfo.kafka, round);
        drains.push(d);
        log(`  idle p99 ${ms(d.idle.p99)} ms, draining p99 ${ms(d.drain.p99)} ms (${d.ratio.toFixed(2)}×), req/s done idle ${d.idle.rps.toFixed(0)}, draining ${d.drain.rps.toFixed(0)}; `
          + `spooled ${d.filledRecords}, drained in the window ${d.drainedInWindow}, spool ${d.recordsAtStart} → ${d.recordsAtEnd}${d.emptiedAfter === null ? '' : ` (empty after ~${d.emptiedAfter} s)`}, `
          + `drainer's duty ${d.duty?.toFixed(2)}, broker back after ${d.restartSeconds.toFixed(1)} s, spilled in warm-up ${d.warmSpilled} and idle ${d.idleSpilled}, spool drops ${d.dropped}, non-2xx ${d.idle.status + d.drain.status}, socket errors ${d.idle.socketErrors + d.drain.socketErrors}, exit ${d.exit}`);
        log(`  CPU ms per s, idle: ${fmtCpu(d.idleCpu)}; draining: ${fmtCpu(d.drainCpu)}`);
      } catch (err) {
        log(`  drain round failed — ${err.message.split('\n')[0]}`);
        if (err.serverOutput) log(`  scratchd's last output:\n${err.serverOutput}`);
        drains.push({ round, error: err.message.split('\n')[0] });
        // The next round (and the broker's stop) want it up again.
        await kafkaInfo.kafka.command('restart').catch(() => {});
      }
    }
  }
  kafkaInfo.kafka?.stop();

  // Item 7: two server threads vs one, CPU per request.
  let scale = null;
  if (SCALE > 0 && keys.includes('c')) {
    try {
      log(`scaling: one thread vs 2 threads vs 2 processes, ${SCALE} s each, 2 rounds`);
      scale = await measureScale({ dir, seconds: SCALE, rounds: 2, log: (m) => log(`  ${m}`) });
    } catch (err) {
      log(`scaling: failed — ${err.message.split('\n')[0]}`);
    }
  }

  const summary = summarize(results, keys, ctx);
  writeFileSync(join(dir, 'results.json'), JSON.stringify({ info, results, summary, threads }, null, 2));
  // `--only threads` alone: only its own section of the report changes.
  const threadsAlone = [...ONLY].every((k) => k === 'threads');
  if (!opt['no-write'] && threadsAlone && threads) {
    replaceSection(resolve(root, opt.out), threads.markdown);
    log(`updated the serving-threads section of ${opt.out}`);
  } else if (!opt['no-write']) {
    const report = renderReport({ info, summary, results, ctx, kafkaInfo, goInfo, avgQuery, requests, timelines, scale, drains, drainReason, threads });
    writeFileSync(resolve(root, opt.out), report);
    log(`wrote ${opt.out}`);
  }
  if (keys.length > 0) process.stdout.write('\n' + renderTables(summary, ctx) + '\n');
  if (threads) process.stdout.write('\n' + threads.markdown + '\n');
  if (drains.length > 0) process.stdout.write('\n' + renderDrain(drains, ctx) + '\n');
  if (!opt.keep) rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
  const failures = [...summary.checks, ...drainChecks(drains), ...(threads?.checks ?? [])].filter((c) => !c.ok);
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s; correctness: ${failures.length === 0 ? 'all rounds ok' : failures.map((f) => f.text).join('; ')}`);
  process.exitCode = failures.length === 0 ? 0 : 1;
}

// --------------------------------------------------------------- summary ----

function summarize(results, keys, ctx) {
  const rows = {};
  for (const k of keys) {
    const rs = results.filter((r) => r.key === k);
    const gcMax = rs.map((r) => r.gcMax).filter(Boolean);
    const gcPaced = rs.map((r) => r.gcPaced).filter(Boolean);
    rows[k] = {
      rounds: rs.length,
      rps: median(rs.map((r) => r.max.rps)),
      cpu: median(rs.map((r) => r.max.cpuUsPerReq)),
      perCore: median(rs.map((r) => 1e6 / r.max.cpuUsPerReq)),
      share: median(rs.map((r) => r.max.coreShare)),
      rpsAll: rs.map((r) => r.max.rps),
      p50: median(rs.map((r) => r.max.p50)),
      p99: median(rs.map((r) => r.max.p99)),
      p99All: rs.map((r) => r.max.p99),
      p999: median(rs.map((r) => r.max.p999)),
      gcRounds: rs.map((r) => [r.gcMax?.maxMs ?? NaN, r.gcPaced?.maxMs ?? NaN]),
      rss: median(rs.map((r) => r.rss)),
      rssMax: Math.max(...rs.map((r) => r.rss)),
      gcMaxPause: gcMax.length ? Math.max(...gcMax.map((g) => g.maxMs)) : NaN,
      gcP99: gcMax.length ? median(gcMax.map((g) => g.p99Ms)) : NaN,
      gcPerSec: gcMax.length ? median(gcMax.map((g) => g.totalMs / (g.wallMs / 1000))) : NaN,
      gcCount: gcMax.length ? median(gcMax.map((g) => g.count)) : NaN,
      gcOver5: gcMax.length ? gcMax.reduce((s, g) => s + g.over5ms, 0) : NaN,
      paced: rs[0]?.paced ? {
        rps: median(rs.map((r) => r.paced.rps)),
        p50: median(rs.map((r) => r.paced.p50)),
        p99: median(rs.map((r) => r.paced.p99)),
        p99All: rs.map((r) => r.paced.p99),
        p999: median(rs.map((r) => r.paced.p999)),
        max: Math.max(...rs.map((r) => r.paced.max)),
        gcMaxPause: gcPaced.length ? Math.max(...gcPaced.map((g) => g.maxMs)) : NaN,
        gcOver5: gcPaced.length ? gcPaced.reduce((s, g) => s + g.over5ms, 0) : NaN,
      } : null,
    };
  }
  return { rows, checks: roundChecks(results) };
}

function renderTables(summary, ctx) {
  const { rows } = summary;
  const keys = Object.keys(rows);
  const A = rows.a;
  const B = rows.b;
  const label = (k) => CONTENDERS[k].label;
  const out = [];
  out.push(`### Maximum load (wrk -t1 -c${CONNS}, ${DURATION} s per round, median of ${ROUNDS})`, '');
  out.push('| contender | req/s | req per CPU-second | CPU µs per request | core 0 share | p50 ms | p99 ms | p99.9 ms | peak RSS MB | GC max pause ms | GC p99 pause ms | GC ms per s | GC pauses > 5 ms |');
  out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const k of keys) {
    const r = rows[k];
    out.push(`| ${label(k)} | ${fmtN(r.rps)} | ${fmtN(r.perCore)} | ${fmtN(r.cpu, 1)} | ${fmtN(100 * r.share)}% | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtMs(r.p999)} | ${fmtMB(r.rss)} | ${fmtN(r.gcMaxPause, 2)} | ${fmtN(r.gcP99, 2)} | ${fmtN(r.gcPerSec, 1)} | ${fmtN(r.gcOver5)} |`);
  }
  for (const [base, name] of [[A, '(a)'], [B, '(b)']]) {
    if (!base) continue;
    out.push('', `Ratios to ${name} (req/s: higher is better; CPU per request, latency and RSS: lower is better)`, '');
    out.push('| contender | req/s | req per CPU-second | CPU per request | p50 | p99 | p99.9 | peak RSS |');
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|');
    for (const k of keys) {
      const r = rows[k];
      out.push(`| ${label(k)} | ${fmtRatio(r.rps / base.rps)} | ${fmtRatio(r.perCore / base.perCore)} | ${fmtRatio(r.cpu / base.cpu)} | ${fmtRatio(r.p50 / base.p50)} | ${fmtRatio(r.p99 / base.p99)} | ${fmtRatio(r.p999 / base.p999)} | ${fmtRatio(r.rss / base.rss)} |`);
    }
  }
  for (const [k, b] of [['c', 'c0'], ['d', 'd0'], ['c1', 'c'], ['d1', 'd']]) {
    const now = rows[k], then = rows[b];
    if (!now || !then) continue;
    out.push('', `Change vs ${b.endsWith('0') ? 'baseline' : 'the usual flags'}: (${k}) / (${b}) req/s ${fmtRatio(now.rps / then.rps)}, CPU per request ${fmtRatio(now.cpu / then.cpu)}, p99 ${fmtRatio(now.p99 / then.p99)}, `
      + `half-load p99 ${fmtRatio(now.paced?.p99 / then.paced?.p99)}, peak RSS ${fmtRatio(now.rss / then.rss)}, GC ms/s ${fmtRatio(now.gcPerSec / then.gcPerSec)}`);
  }
  if (keys.some((k) => rows[k].paced)) {
    out.push('', `### (e) Half load: ${ctx.targetRate} req/s aimed at (half of scratchd's calibrated ${fmtN(ctx.calibratedRps)} req/s), wrk -t1 -c${PACED_CONNS}, each connection paced with exponential gaps, ${PACED_DURATION} s per round, median of ${ROUNDS}`, '');
    out.push('(e) is the scratchd row; (a) and (b) get the same offered load as reference.', '');
    out.push('| server at half load | req/s done | p50 ms | p99 ms | p99.9 ms | max ms | GC max pause ms | p99 ×(a) | p99 ×(b) | p99.9 ×(a) | p99.9 ×(b) |');
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
    for (const k of keys) {
      const p = rows[k].paced;
      if (!p) continue;
      const pa = A?.paced;
      const pb = B?.paced;
      const name = k === 'c' ? '(e) scratchd, file backend' : label(k);
      out.push(`| ${name} | ${fmtN(p.rps)} | ${fmtMs(p.p50)} | ${fmtMs(p.p99)} | ${fmtMs(p.p999)} | ${fmtMs(p.max)} | ${fmtN(p.gcMaxPause, 2)} | ${fmtRatio(p.p99 / pa?.p99)} | ${fmtRatio(p.p99 / pb?.p99)} | ${fmtRatio(p.p999 / pa?.p999)} | ${fmtRatio(p.p999 / pb?.p999)} |`);
    }
  }
  return out.join('\n');
}

/**
 * Issue 18's targets, each met / not met with the figures of this run
 * (medians over rounds unless a worst round is named), then what is measured
 * without a threshold (the Go contender, scaling).
 */
function renderTargets(summary, extra = {}) {
  const { rows, checks } = summary;
  const t = [];
  const add = (name, value, ok) => t.push(`| ${name} | ${value} | ${ok === null ? 'n/a' : ok === 'reported' ? 'measured' : ok ? 'met' : '**not met**'} |`);
  const { a, b, c, d, g } = rows;
  const na = 'not measured';
  add('1. (c) ≥ 1.0× (b), req/s', c && b ? `${fmtRatio(c.rps / b.rps)} (${fmtN(c.rps)} / ${fmtN(b.rps)}; per CPU-second ${fmtRatio(c.perCore / b.perCore)})` : na, c && b ? c.rps >= b.rps : null);
  const dChecks = checks.filter((x) => / d: /.test(x.text));
  const dExact = dChecks.length > 0 && dChecks.every((x) => x.ok);
  add('2. (d) ≥ 0.85× (c), req/s', d && c ? `${fmtRatio(d.rps / c.rps)} (${fmtN(d.rps)} / ${fmtN(c.rps)}; per CPU-second ${fmtRatio(d.perCore / c.perCore)})` : na, d && c ? d.rps >= 0.85 * c.rps : null);
  add('2. (d) delivery accounting exact (persisted = Lines in files, nothing dropped, every round)', d ? `${dChecks.filter((x) => x.ok).length} of ${dChecks.length} checks ok` : na, d ? dExact : null);
  add('3. (c) p99 ≤ 1.0 ms at maximum load', c ? `${fmtMs(c.p99)} ms (rounds: ${c.p99All.map(fmtMs).join(', ')})` : na, c ? c.p99 <= 1000 : null);
  add('3. (d) p99 ≤ 1.5 ms at maximum load', d ? `${fmtMs(d.p99)} ms (rounds: ${d.p99All.map(fmtMs).join(', ')})` : na, d ? d.p99 <= 1500 : null);
  add('3. (c) p99 ≤ 0.7 ms at half load (e)', c?.paced ? `${fmtMs(c.paced.p99)} ms (rounds: ${c.paced.p99All.map(fmtMs).join(', ')})` : na, c?.paced ? c.paced.p99 <= 700 : null);
  add('4. (c) peak RSS ≤ 65 MB at maximum load', c ? `${fmtMB(c.rssMax)} MB worst round (median ${fmtMB(c.rss)})` : na, c ? c.rssMax <= 65 * 2 ** 20 : null);
  add('4. (d) peak RSS ≤ 85 MB at maximum load', d ? `${fmtMB(d.rssMax)} MB worst round (median ${fmtMB(d.rss)})` : na, d ? d.rssMax <= 85 * 2 ** 20 : null);
  for (const [k, r] of [['c', c], ['d', d]]) {
    const worst = r ? Math.max(r.gcMaxPause, r.paced?.gcMaxPause ?? 0) : NaN;
    add(`5. (${k}) no GC pause > 5 ms in any round`, r ? `longest ${fmtN(worst, 2)} ms; per round (max load / half load): ${r.gcRounds.map(([m, p]) => `${fmtN(m, 2)}/${fmtN(p, 2)}`).join(', ')}` : na, r ? worst <= 5 : null);
  }
  add('6. Go contender (g), same rounds', g && c ? `(c)/(g): req/s ${fmtRatio(c.rps / g.rps)}, CPU per request ${fmtRatio(c.cpu / g.cpu)}, half-load p99 ${fmtRatio(c.paced?.p99 / g.paced?.p99)}, peak RSS ${fmtRatio(c.rss / g.rss)}`
    : `not measured${extra.goReason ? `: ${extra.goReason}` : ''}`, g && c ? 'reported' : null);
  add('7. two server threads vs one (CPU per request)', extra.scale ? extra.scale.summary : `not measured${extra.scaleReason ? `: ${extra.scaleReason}` : ''}`, extra.scale ? 'reported' : null);
  const dr = extra.drain;
  add('issue 14: (d) half-load p99 during a spool drain ≤ 2× idle (same process, same run)', dr
    ? `${fmtRatio(dr.ratio)} (${fmtMs(dr.during)} / ${fmtMs(dr.idle)} ms; requests done ${fmtRatio(dr.kept)} idle's; median ${fmtN(dr.drained)} records drained in the window${dr.wholeWindow ? ', spool non-empty to its end' : ', **the spool emptied before the window ended in some round**'})`
    : `not measured${extra.drainReason ? `: ${extra.drainReason}` : ''}`, dr ? dr.met : null);
  add('earlier: (c) ≥ 0.6× (a), req/s', c && a ? fmtRatio(c.rps / a.rps) : na, c && a ? c.rps >= 0.6 * a.rps : null);
  return ['| target (issue 18) | measured | |', '|---|---|---|', ...t].join('\n');
}
const THREADS_HEADING = '## Serving threads on the whole machine (issue 24)';

/** Put `section` (starting with THREADS_HEADING) in place of the file's own, or before its hand-written analysis. */
function replaceSection(file, section) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const at = text.indexOf(THREADS_HEADING);
  if (at >= 0) {
    const next = text.indexOf('\n## ', at + THREADS_HEADING.length);
    writeFileSync(file, `${text.slice(0, at)}${section}\n${next < 0 ? '' : text.slice(next)}`);
    return;
  }
  const analysis = text.indexOf('\n## Analysis');
  writeFileSync(file, analysis < 0 ? `${text.trimEnd()}\n\n${section}\n` : `${text.slice(0, analysis)}\n${section}\n${text.slice(analysis)}`);
}

function renderReport({ info, summary, results, ctx, kafkaInfo, goInfo, avgQuery, requests, timelines, scale, drains = [], drainReason = null, threads = null }) {
  const notesFile = join(benchDir, 'notes.md');
  const notes = existsSync(notesFile) ? readFileSync(notesFile, 'utf8').trim() : '';
  const sample = requests[0];
  const perRound = results.map((r) => `| ${r.round} | ${r.key} | ${fmtN(r.max.rps)} | ${fmtN(r.max.cpuUsPerReq, 1)} | ${fmtMs(r.max.p99)} | ${r.paced ? fmtN(r.paced.rps) : '–'} | ${r.paced ? fmtMs(r.paced.p99) : '–'} | ${r.paced ? fmtMs(r.paced.p999) : '–'} | ${fmtMB(r.rss)} | ${r.gcMax ? fmtN(r.gcMax.maxMs, 2) : '–'} | ${r.gcPaced ? fmtN(r.gcPaced.maxMs, 2) : '–'} | ${r.lines !== undefined ? `${r.lines} / ${r.expectedOk}${r.key === 'b' ? '' : r.linesOk ? ' ✓' : ' ✗'}` : '–'} |`);
  return `# Benchmarks

Generated by \`npm run bench\` (\`node bench/run.mjs\`) on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, scratchd at ${info.commit}.
Every figure is a median over ${ROUNDS} rounds in which the contenders alternate (the order rotating each
round), and every ratio compares figures of the same run: the machine is shared with other work, so
absolute numbers move between runs, ratios much less.

## Machine

| | |
|---|---|
| cores (\`nproc\`) | ${info.nproc} |
| CPU | ${info.cpu} |
| memory | ${info.memory} |
| kernel | ${info.kernel} |
| OS (chroot) | ${info.os} |
| node | ${info.node} |
| uWebSockets.js | ${info.uws} |
| load generator | ${info.wrk} |
| nginx | ${info.nginx.replace(/^nginx version: /, '')} |
| load average at start | ${info.load} |

## Method

- Server under test pinned to core 0 (\`taskset -c 0\`), the load generator to core 1 (\`taskset -c 1 wrk -t1 …\`).
  scratchd's config says \`"threads": 1\` in every pinned row (and in the timeline and drain measurements): one
  serving thread plus the main thread with the backends, both on core 0 (issue 24; \`"auto"\` would follow the
  affinity mask to the same 1, but the rows do not rely on it). The unpinned two-core rows are in the serving-threads section.
- Traffic: ${requests.length} distinct Matomo-style \`GET /track?…\` beacons (${avgQuery.toFixed(0)} bytes of query on average:
  percent-encoded page and referrer URLs, Greek/Turkish/English UTF-8 titles, ids), round-robin over the Host
  headers of three flavors (${FLAVORS.map((f) => `\`${f.host}\``).join(', ')}), keep-alive, browser-like \`User-Agent\`/\`Accept\`.
  A sample: \`${sample.path.slice(0, 140)}…\`
- Per contender and round: start the server, wait for a 200, 1 s warm-up, ${DURATION} s at maximum load
  (\`wrk -t1 -c${CONNS} -d${DURATION}s --latency\`), then ${PACED_DURATION} s at half load, stop.
- Half load (e): ${ctx.targetRate} req/s, half of scratchd's maximum measured in a 5 s calibration run at the start
  (${fmtN(ctx.calibratedRps)} req/s). \`wrk2\` is not in Debian, so plain \`wrk\` with a Lua \`delay()\`: ${PACED_CONNS}
  connections each wait an exponentially distributed gap (mean ${PACED_CONNS} / rate) before each request, so the
  offered load is a Poisson stream rather than synchronised bursts. Latency is measured from the moment each
  request is written. Each connection is idle ~${(PACED_CONNS * 1000 / Math.max(ctx.pacedRate, 1)).toFixed(0)} ms between requests, much longer than a typical answer.
  wrk's delays are whole milliseconds and its timers fire late, which costs a roughly constant share of the rate;
  the runner measures that share once (3 s against scratchd) and asks wrk for ${ctx.pacedRate} req/s so that about
  ${ctx.targetRate} are done; the table shows the rate actually done.
  Coordinated omission only hides requests that would have started on a connection during a stall longer than
  its gap: none on a quiet machine; on a contended one, where the whole server is sometimes descheduled for
  longer, some are hidden, so the tails are if anything understated.
- Peak RSS: \`VmHWM\` from \`/proc/<pid>/status\` after the maximum-load run (nginx: master + worker).
- GC: the Node servers run with \`--import bench/gc-preload.mjs\`, a PerformanceObserver on \`gc\` entries that
  writes count, total and longest pause at exit (and on SIGUSR2, used to split warm-up / maximum / paced).
- Correctness, every scratchd round: after SIGTERM (scratchd drains and fsyncs), the Lines in
  \`<dir>/<flavor>/<flavor>-<day>.log\` are counted and each one is compared with the Values its query must give;
  the count must be at least the 2xx answers wrk counted and exceed them by no more than the requests in flight
  when each wrk run stopped (answered and written, but not counted by wrk: at most one per connection). wrk's
  non-2xx and socket errors are reported separately and must be 0. nginx's access-log lines are counted the same way.
- (g) Go: ${goInfo?.binary ? `\`bench/go\` (stdlib net/http: Host → flavor, flat Rack-like query → JSON, a buffered channel and one writer goroutine per flavor's file, flushed whenever its channel is empty), built with ${goInfo.version}, \`CGO_ENABLED=0\`; pinned to core 0 like the others, so GOMAXPROCS is 1. Its Lines are checked like scratchd's.` : `**not measured**: ${goInfo?.reason ?? 'not requested'}.`}
- (d) Kafka: ${kafkaInfo.kafka ? `broker ${kafkaInfo.kafka.brokers}, started by test/helpers/kafka.ts (its own, never \`KAFKA_BOOTSTRAP\`'s: the drain measurement kills and restarts it), pinned to core 1 with wrk, and loaded for ${WARM_BROKER} s through an unmeasured (d) before the rounds (a cold broker's first second of slow acknowledgements would otherwise land in the first (d) round).` : `**not available**: ${kafkaInfo.reason}. The runner detects and runs it when the backend and the broker harness are on the branch.`}

Commands (inside the chroot: \`../shared/trixie npm run bench\`):

\`\`\`
taskset -c 0 node --import bench/gc-preload.mjs bench/ceiling.mjs PORT                     # (a)
taskset -c 0 nginx -c TMP/nginx.conf -p TMP                                              # (b), see below
${Object.entries(scratchdEnv).map(([k, v]) => `${k}=${v} `).join('')}taskset -c 0 node ${scratchdFlags.join(' ')} --import bench/gc-preload.mjs dist/main.js --config TMP/scratchd-file.json  # (c), (e)
${Object.entries(scratchdEnv).map(([k, v]) => `${k}=${v} `).join('')}taskset -c 0 node ${scratchdFlags.join(' ')} --import bench/gc-preload.mjs dist/main.js --config TMP/scratchd-kafka.json # (d)
taskset -c 0 TMP/scratchd-go -listen 127.0.0.1:PORT -dir TMP/go-log -flavor gr=www.example.gr,Europe/Athens …      # (g)
taskset -c 1 wrk -t1 -c${CONNS} -d${DURATION}s --latency --timeout 5s -s TMP/track.lua http://127.0.0.1:PORT/track
taskset -c 1 wrk -t1 -c${PACED_CONNS} -d${PACED_DURATION}s --latency --timeout 5s -s TMP/track.lua http://127.0.0.1:PORT/track -- ${ctx.pacedRate} ${PACED_CONNS}
\`\`\`

nginx (b): \`worker_processes 1\`, \`empty_gif\` plus the same \`Cache-Control\`/\`Expires\` headers,
\`log_format scratch escape=json '{"time":"$time_iso8601","host":"$host","args":"$args"}'\`,
\`access_log … scratch buffer=64k flush=1s\`.

## Results

${renderTables(summary, ctx)}

### Targets

${renderTargets(summary, { drain: summarizeDrain(drains), drainReason, goReason: goInfo?.reason, scale, scaleReason: scale === null ? (SCALE > 0 ? 'the measurement failed (see the runner\'s log)' : 'skipped (--scale 0)') : null })}

${timelines.length > 0 ? `### Where the tail comes from: latency timeline at half load

${timelineMethod()}

${timelines.map((t) => t.markdown).join('\n\n')}` : ''}

${drains.length > 0 ? renderDrain(drains, ctx) : ''}

${scale ? `### Two server threads vs one (issue 18, item 7)

${scale.markdown}` : ''}

### Rounds

| round | contender | max req/s | CPU µs/req | max p99 ms | paced req/s | paced p99 ms | paced p99.9 ms | peak RSS MB | longest GC pause ms (max load) | longest GC pause ms (half load) | lines / wrk 2xx |
|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|
${perRound.join('\n')}

Correctness checks:

${[...summary.checks, ...drainChecks(drains)].map((c) => `- ${c.ok ? 'ok' : '**FAILED**'}: ${c.text}`).join('\n')}

${threads ? threads.markdown : ''}

${notes}
`;
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(1);
});
