// The contenders of the pinned rows, (a) ceiling, (b) nginx, (c)/(d)
// scratchd, (g) the Go original, and one round of one of them: start, warm
// up, maximum load, half load, stop, check.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkLines, countNginxLines } from './checks.mjs';
import { wrk } from './load.mjs';
import { scratchdEnv, scratchdFlags } from './production.mjs';
import { childPids, cpuSeconds, spawnServer, stopServer, vmHWM, waitReady } from './servers.mjs';
import { FLAVORS } from './traffic.mjs';
import { benchDir, node, readJson, root } from './util.mjs';

const preload = ['--import', join(benchDir, 'gc-preload.mjs')];

/**
 * (a) … (g) by key; `opt` is the runner's options: --baseline adds (c0) and
 * (d0), --alt-flags (c1) and (d1).
 */
export function makeContenders(opt) {
  const contenders = {
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
    contenders.c0 = scratchd(`(c0) scratchd, file backend ${at}`, opt.baseline, 'configFile');
    contenders.d0 = scratchd(`(d0) scratchd, file + Kafka ${at}`, opt.baseline, 'kafkaConfigFile');
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
    contenders.c1 = scratchd(`(c1) scratchd, file backend, node ${opt['alt-flags']}`, root, 'configFile', flags, env);
    contenders.d1 = scratchd(`(d1) scratchd, file + Kafka, node ${opt['alt-flags']}`, root, 'kafkaConfigFile', flags, env);
  }
  return contenders;
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

export async function runContender(key, ctx, round) {
  const c = ctx.contenders[key];
  const { CONNS, PACED_CONNS, DURATION, PACED_DURATION } = ctx.settings;
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
