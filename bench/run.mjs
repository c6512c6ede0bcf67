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
// idle, bench/drain.mjs), two server threads vs one (bench/scale/: CPU per
// request) and, nothing pinned, serving threads on both cores (issue 24's
// targets, bench/threads.mjs: (c)/(d) at "threads": 2 against nginx
// worker_processes 2 and Go at GOMAXPROCS=2, wrk -t2; --only threads) and,
// in-process, what a hit costs with dedup on (bench/dedup.mjs; --only dedup).
//
// Options: --rounds N (3) --duration S (8) --paced-duration S (8)
//          --connections N (64) --paced-connections N (200) --only a,b,c,d,g,drain,threads,dedup
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
//
// This file is the orchestration: options, the order of the measurements,
// the log. The parts: bench/setup.mjs (tools, build, machine), traffic.mjs
// (the requests), load.mjs (wrk, its Lua script, calibration), servers.mjs
// (processes), configs.mjs (nginx and scratchd configs), contenders.mjs (the
// pinned rows), broker.mjs (Kafka for (d)), drain.mjs, checks.mjs,
// summary.mjs, targets.mjs and report.mjs (BENCHMARKS.md).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startKafkaIfAvailable, warmBroker, WARM_BROKER } from './broker.mjs';
import { checkLines, countNginxLines, drainChecks } from './checks.mjs';
import { scratchdConfig, nginxConf } from './configs.mjs';
import { makeContenders, runContender } from './contenders.mjs';
import { measureDrain } from './drain.mjs';
import { ms } from './format.mjs';
import { calibrate, luaScript, wrk } from './load.mjs';
import { scratchdEnv, scratchdFlags } from './production.mjs';
import { renderDrain, renderReport, renderTables, replaceSection } from './report.mjs';
import { measureScale } from './scale/measure.mjs';
import { childPids, freePort, spawnServer, stopServer, vmHWM, waitReady } from './servers.mjs';
import { buildGo, ensureGo, ensureTools, machine } from './setup.mjs';
import { summarize } from './summary.mjs';
import { measureThreads, renderThreads } from './threads.mjs';
import { buildClient, runTimeline } from './timeline.mjs';
import { expectedValues, FLAVORS, makeRequests } from './traffic.mjs';
import { benchDir, log, node, root, started } from './util.mjs';

process.chdir(root);

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    'paced-duration': { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    'paced-connections': { type: 'string', default: '200' },
    only: { type: 'string', default: 'a,b,c,d,g,drain,threads,dedup' },
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
/** The run's settings, as every part reads them (ctx.settings). */
const settings = {
  ROUNDS: Number(opt.rounds),
  DURATION: Number(opt.duration),
  PACED_DURATION: Number(opt['paced-duration']),
  CONNS: Number(opt.connections),
  PACED_CONNS: Number(opt['paced-connections']),
  CALIBRATION: Number(opt.calibration),
  TIMELINE: Number(opt.timeline),
  SCALE: Number(opt.scale),
  DRAIN: Number(opt.drain),
  DRAIN_FILL: Number(opt['drain-fill']),
  DRAIN_RATE: Number(opt['drain-rate']),
};
const { ROUNDS, DURATION, PACED_DURATION, CONNS, PACED_CONNS, CALIBRATION, TIMELINE, SCALE, DRAIN } = settings;
const ONLY = new Set(opt.only.split(','));
const CONTENDERS = makeContenders(opt);

// ------------------------------------------------------------------ main ----

async function main() {
  if (opt['threads-from']) return rerenderThreads();
  log(`scratchd benchmark: ${ROUNDS} rounds × (1 s warm-up + ${DURATION} s max + ${PACED_DURATION} s paced) per contender`);
  ensureTools();
  const info = machine();
  log(`machine: ${info.nproc} cores, ${info.cpu}, ${info.kernel}, node ${info.node}, load ${info.load}`);
  if (Number(info.nproc) < 2) log('warning: fewer than 2 cores; server and load generator share a core');

  const { ctx, requests, avgQuery } = await prepare(opt['prep-only'] ?? mkdtempSync(join(tmpdir(), 'scratchd-bench-')));
  if (opt['prep-only']) return; // bench/profile.mjs: only the traffic and the config

  const wantDrain = ONLY.has('drain') && DRAIN > 0;
  const wantThreads = ONLY.has('threads');
  const kafkaInfo = ONLY.has('d') || wantDrain || wantThreads ? await startKafka(ctx) : { kafka: null, reason: 'not requested (--only)' };
  const goInfo = ONLY.has('g') || wantThreads ? startGo(ctx) : { binary: null, reason: 'not requested (--only)' };
  const keys = contenderKeys(kafkaInfo, goInfo);
  if (keys.length > 0) await calibrateRounds(ctx);
  if (kafkaInfo.kafka) {
    // A broker just started acknowledges slowly for its first second or so
    // under load (its JVM still compiling): Lines then pile up in librdkafka
    // (~28 000 in a probe) and that (d) round's peak RSS and GC pauses
    // measure the cold broker (bench/notes.md, target 5). Production brokers
    // are warm, so the broker gets its first load here, unmeasured.
    log(`warming the broker up: (d) at maximum load for ${WARM_BROKER} s, not measured`);
    await warmBroker(ctx);
  }

  const results = await runRounds(ctx, keys);
  const timelines = await runTimelines(ctx, keys);
  // Issue 24: serving threads on both cores, before the drain (which kills
  // and restarts the broker: a restarted broker is a cold JVM again).
  const threads = wantThreads ? await runThreads(ctx, info, kafkaInfo, goInfo) : null;
  // Issue 14: (d) during a spool drain vs idle, after everything else that
  // uses the broker, since it kills and restarts it.
  const { drains, drainReason } = await measureDrain(ctx, kafkaInfo, wantDrain);
  kafkaInfo.kafka?.stop();
  const scale = await runScale(ctx, keys);
  const dedup = ONLY.has('dedup') ? runDedup() : null;

  const summary = summarize(results, keys);
  writeFileSync(join(ctx.dir, 'results.json'), JSON.stringify({ info, results, summary, threads }, null, 2));
  writeReport({ info, summary, results, ctx, kafkaInfo, goInfo, avgQuery, requests, timelines, scale, drains, drainReason, threads, dedup });
  if (keys.length > 0) process.stdout.write('\n' + renderTables(summary, ctx) + '\n');
  if (threads) process.stdout.write('\n' + threads.markdown + '\n');
  if (drains.length > 0) process.stdout.write('\n' + renderDrain(drains, ctx) + '\n');
  if (dedup) process.stdout.write('\n' + dedup + '\n');
  if (!opt.keep) rmSync(ctx.dir, { recursive: true, force: true });
  else log(`kept ${ctx.dir}`);
  const failures = [...summary.checks, ...drainChecks(drains), ...(threads?.checks ?? [])].filter((c) => !c.ok);
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s; correctness: ${failures.length === 0 ? 'all rounds ok' : failures.map((f) => f.text).join('; ')}`);
  process.exitCode = failures.length === 0 ? 0 : 1;
}

/** --threads-from FILE: render a kept results.json's serving-threads section again; measures nothing. */
function rerenderThreads() {
  const { m, meta, opts } = JSON.parse(readFileSync(opt['threads-from'], 'utf8')).threads.raw;
  const t = renderThreads(m, meta, { ...opts, notesFile: join(benchDir, 'threads-notes.md') });
  if (opt['no-write']) process.stdout.write(t.markdown + '\n');
  else replaceSection(resolve(root, opt.out), t.markdown);
}

/** The traffic (wrk's script, the raw requests, the expected Values) and the configs, in `dir`. */
async function prepare(dir) {
  const requests = makeRequests();
  const script = join(dir, 'track.lua');
  writeFileSync(script, luaScript(requests));
  // The same requests, raw, for bench/go/client (the latency timeline).
  writeFileSync(join(dir, 'requests.json'), JSON.stringify(requests.map((r) => `GET ${r.path} HTTP/1.1\r\nHost: ${r.host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: image/avif,image/webp,*/*\r\n\r\n`)));
  const expected = new Set(['ready=1', ...requests.map((r) => r.path.slice('/track?'.length))].map((q) => JSON.stringify(expectedValues(q))));
  const avgQuery = requests.reduce((s, r) => s + r.path.length - 7, 0) / requests.length;
  log(`traffic: ${requests.length} distinct queries, ${avgQuery.toFixed(0)} bytes on average, hosts ${FLAVORS.map((f) => f.host).join(', ')}`);

  const ports = { a: await freePort(), b: await freePort(), c: await freePort(), g: await freePort(), stats: await freePort() };
  const ctx = { dir, script, expected, ports, pacedRate: 0, settings, contenders: CONTENDERS };
  ctx.nginxConf = nginxConf(dir, ports.b);
  ctx.configFile = scratchdConfig(dir, ports.c, ports.stats, null);
  ctx.configFile2 = scratchdConfig(dir, ports.c, ports.stats, null, false, 2);
  ctx.nginx2Conf = nginxConf(dir, ports.b, 2);
  return { ctx, requests, avgQuery };
}

/** The broker for (d), the drain and the serving threads, and their configs; or why not. */
async function startKafka(ctx) {
  const { dir, ports } = ctx;
  log('(d): looking for the Kafka backend and broker harness');
  const kafkaInfo = await startKafkaIfAvailable();
  if (kafkaInfo.kafka) {
    ctx.kafkaConfigFile = scratchdConfig(dir, ports.c, ports.stats, kafkaInfo.kafka);
    ctx.drainConfigFile = scratchdConfig(dir, ports.c, ports.stats, kafkaInfo.kafka, true);
    ctx.kafkaConfigFile2 = scratchdConfig(dir, ports.c, ports.stats, kafkaInfo.kafka, 'shipped', 2);
    ctx.brokers = kafkaInfo.kafka.brokers;
    log(`(d): broker at ${kafkaInfo.kafka.brokers}`);
  } else log(`(d): not available — ${kafkaInfo.reason}`);
  return kafkaInfo;
}

/** The Go original (g), built; or why not. */
function startGo(ctx) {
  const goInfo = buildGo(ctx.dir);
  if (goInfo.binary) {
    ctx.goBinary = goInfo.binary;
    log(`(g): ${goInfo.version}`);
  } else log(`(g): skipped — ${goInfo.reason}`);
  return goInfo;
}

/** The pinned rows this run measures: --only, less what is missing, plus --baseline's and --alt-flags' rows. */
function contenderKeys(kafkaInfo, goInfo) {
  const keys = ['a', 'b', 'c', 'd', 'g'].filter((k) => ONLY.has(k) && (k !== 'd' || kafkaInfo.kafka) && (k !== 'g' || goInfo.binary));
  if (opt.baseline) {
    if (!existsSync(join(opt.baseline, 'dist/main.js'))) {
      log(`building the baseline in ${opt.baseline}`);
      execFileSync('npx', ['tsc', '-p', '.'], { stdio: 'inherit', cwd: opt.baseline });
    }
    keys.push(...keys.filter((k) => k === 'c' || k === 'd').map((k) => `${k}0`));
  }
  if (opt['alt-flags'] !== undefined) keys.push(...keys.filter((k) => k === 'c' || k === 'd').map((k) => `${k}1`));
  return keys;
}

/** Calibration: scratchd's maximum rate sets the paced rate for every round. */
async function calibrateRounds(ctx) {
  log(`calibrating: scratchd at maximum load for ${CALIBRATION} s`);
  const cal = await calibrate(ctx, ctx.configFile);
  ctx.calibratedRps = cal.rps;
  ctx.targetRate = cal.targetRate;
  ctx.pacedRate = cal.pacedRate;
  log(`calibrated: ${ctx.calibratedRps.toFixed(0)} req/s; paced runs aim at ${ctx.targetRate} req/s (wrk asked for ${ctx.pacedRate}) over ${PACED_CONNS} connections`);
}

/** ROUNDS rounds over the pinned rows, the order rotating per round. */
async function runRounds(ctx, keys) {
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
  return results;
}

/** Where the tail comes from: (c) and (d) at the half-load rate, every request timed. */
async function runTimelines(ctx, keys) {
  const { dir, ports } = ctx;
  const timelines = [];
  if (!(TIMELINE > 0 && ctx.targetRate > 0 && (keys.includes('c') || keys.includes('d')))) return timelines;
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
  return timelines;
}

/** Issue 24: serving threads on both cores, nothing pinned (bench/threads.mjs), with the runner's own tools. */
async function runThreads(ctx, info, kafkaInfo, goInfo) {
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
  const threads = renderThreads(m, meta, { ...opts, notesFile: join(benchDir, 'threads-notes.md') });
  threads.raw = { m, meta, opts };
  return threads;
}

/** Item 7: two server threads vs one, CPU per request (bench/scale/). */
async function runScale(ctx, keys) {
  if (!(SCALE > 0 && keys.includes('c'))) return null;
  try {
    log(`scaling: one thread vs 2 threads vs 2 processes, ${SCALE} s each, 2 rounds`);
    return await measureScale({ dir: ctx.dir, seconds: SCALE, rounds: 2, log: (m) => log(`  ${m}`) });
  } catch (err) {
    log(`scaling: failed — ${err.message.split('\n')[0]}`);
    return null;
  }
}

/** bench/dedup.mjs's tables (it measures in its own process, after the load rounds), or why it failed. */
function runDedup() {
  log('dedup: bench/dedup.mjs');
  const r = spawnSync(process.execPath, [join(benchDir, 'dedup.mjs')], { encoding: 'utf8', cwd: root });
  return r.status === 0 ? r.stdout.trimEnd() : `bench/dedup.mjs failed (status ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`;
}

/** BENCHMARKS.md (--out), unless --no-write; `--only threads` alone replaces only its own section. */
function writeReport(parts) {
  if (opt['no-write']) return;
  const threadsAlone = [...ONLY].every((k) => k === 'threads');
  if (threadsAlone && parts.threads) {
    replaceSection(resolve(root, opt.out), parts.threads.markdown);
    log(`updated the serving-threads section of ${opt.out}`);
  } else {
    writeFileSync(resolve(root, opt.out), renderReport(parts));
    log(`wrote ${opt.out}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(1);
});
