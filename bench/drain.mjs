// (d) during a spool drain (issue 14): half-load latency while the Kafka
// spool drains, against the same process idle, with /stats `kafka_spool`
// read throughout.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fmtCpu, ms } from './format.mjs';
import { calibrate, wrk } from './load.mjs';
import { scratchdEnv, scratchdFlags } from './production.mjs';
import { spawnServer, stopServer, waitReady } from './servers.mjs';
import { readStats } from './stats.mjs';
import { threadCpu } from './timeline.mjs';
import { FLAVORS } from './traffic.mjs';
import { log, median, node, root, sleep } from './util.mjs';

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
export async function runDrain(ctx, kafka, round) {
  const { ports } = ctx;
  const { CONNS, PACED_CONNS, DRAIN, DRAIN_FILL } = ctx.settings;
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

export function summarizeDrain(drains) {
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

/** Issue 14: ROUNDS drain rounds of (d) with the spool, at half of (d)'s own maximum (or --drain-rate). */
export async function measureDrain(ctx, kafkaInfo, wantDrain) {
  const { ROUNDS, CALIBRATION, DRAIN_RATE } = ctx.settings;
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
    for (let round = 1; round <= ROUNDS && ctx.drainCal; round++) drains.push(await drainRound(ctx, kafkaInfo.kafka, round));
  }
  return { drains, drainReason };
}

/** One drain round, logged; a failed round is recorded with its reason and the broker restarted. */
async function drainRound(ctx, kafka, round) {
  const { ROUNDS, DRAIN, DRAIN_FILL } = ctx.settings;
  log(`drain round ${round}/${ROUNDS}: (d) with the spool, ${DRAIN} s idle, broker killed for ${DRAIN_FILL} s at maximum load, ${DRAIN} s while draining, at ${ctx.drainCal.targetRate} req/s`);
  try {
    const d = await runDrain(ctx, kafka, round);
    log(`  idle p99 ${ms(d.idle.p99)} ms, draining p99 ${ms(d.drain.p99)} ms (${d.ratio.toFixed(2)}×), req/s done idle ${d.idle.rps.toFixed(0)}, draining ${d.drain.rps.toFixed(0)}; `
      + `spooled ${d.filledRecords}, drained in the window ${d.drainedInWindow}, spool ${d.recordsAtStart} → ${d.recordsAtEnd}${d.emptiedAfter === null ? '' : ` (empty after ~${d.emptiedAfter} s)`}, `
      + `drainer's duty ${d.duty?.toFixed(2)}, broker back after ${d.restartSeconds.toFixed(1)} s, spilled in warm-up ${d.warmSpilled} and idle ${d.idleSpilled}, spool drops ${d.dropped}, non-2xx ${d.idle.status + d.drain.status}, socket errors ${d.idle.socketErrors + d.drain.socketErrors}, exit ${d.exit}`);
    log(`  CPU ms per s, idle: ${fmtCpu(d.idleCpu)}; draining: ${fmtCpu(d.drainCpu)}`);
    return d;
  } catch (err) {
    log(`  drain round failed — ${err.message.split('\n')[0]}`);
    if (err.serverOutput) log(`  scratchd's last output:\n${err.serverOutput}`);
    // The next round (and the broker's stop) want it up again.
    await kafka.command('restart').catch(() => {});
    return { round, error: err.message.split('\n')[0] };
  }
}
