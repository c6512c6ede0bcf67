// BENCHMARKS.md: the report's text around the tables, the tables of the
// pinned rows and of the drain measurement, and the serving-threads section
// replaced in place when only that was measured.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WARM_BROKER } from './broker.mjs';
import { drainChecks } from './checks.mjs';
import { DRAIN_RAM_QUEUE } from './configs.mjs';
import { summarizeDrain } from './drain.mjs';
import { fmtMB, fmtMs, fmtN, fmtRatio } from './format.mjs';
import { scratchdEnv, scratchdFlags } from './production.mjs';
import { renderTargets } from './targets.mjs';
import { timelineMethod } from './timeline.mjs';
import { FLAVORS } from './traffic.mjs';
import { benchDir } from './util.mjs';

export function renderTables(summary, ctx) {
  const { rows } = summary;
  const keys = Object.keys(rows);
  const A = rows.a;
  const B = rows.b;
  const label = (k) => ctx.contenders[k].label;
  const { ROUNDS, DURATION, CONNS, PACED_CONNS, PACED_DURATION } = ctx.settings;
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

export function renderDrain(drains, ctx) {
  const s = summarizeDrain(drains);
  const { DRAIN, DRAIN_FILL, CALIBRATION, CONNS } = ctx.settings;
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

export const THREADS_HEADING = '## Serving threads on the whole machine (issue 24)';

/** Put `section` (starting with THREADS_HEADING) in place of the file's own, or before its hand-written analysis. */
export function replaceSection(file, section) {
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

export function renderReport(args) {
  const { info, ctx } = args;
  const { ROUNDS } = ctx.settings;
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

${renderMethod(args)}

${renderResults(args)}`;
}

/** The report's Method section: how each contender is run and loaded, and how its Lines are checked. */
function renderMethod({ ctx, kafkaInfo, goInfo, avgQuery, requests }) {
  const { DURATION, PACED_DURATION, CONNS, PACED_CONNS } = ctx.settings;
  const sample = requests[0];
  return `## Method

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
\`access_log … scratch buffer=64k flush=1s\`.`;
}

/** The report from its Results section on: tables, targets, timelines, drain, scaling, rounds, checks, threads, notes. */
function renderResults({ summary, results, ctx, timelines, scale, drains = [], drainReason = null, threads = null, goInfo, dedup = null }) {
  const { SCALE } = ctx.settings;
  const notesFile = join(benchDir, 'notes.md');
  const notes = existsSync(notesFile) ? readFileSync(notesFile, 'utf8').trim() : '';
  const perRound = results.map((r) => `| ${r.round} | ${r.key} | ${fmtN(r.max.rps)} | ${fmtN(r.max.cpuUsPerReq, 1)} | ${fmtMs(r.max.p99)} | ${r.paced ? fmtN(r.paced.rps) : '–'} | ${r.paced ? fmtMs(r.paced.p99) : '–'} | ${r.paced ? fmtMs(r.paced.p999) : '–'} | ${fmtMB(r.rss)} | ${r.gcMax ? fmtN(r.gcMax.maxMs, 2) : '–'} | ${r.gcPaced ? fmtN(r.gcPaced.maxMs, 2) : '–'} | ${r.lines !== undefined ? `${r.lines} / ${r.expectedOk}${r.key === 'b' ? '' : r.linesOk ? ' ✓' : ' ✗'}` : '–'} |`);
  return `## Results

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

${dedup ? `### A hit with dedup on: \`bench/dedup.mjs\` in this run

In-process, after the load rounds: CPU ns per operation, medians of alternating rounds, each
ratio of the same run (the section *Duplicate hits (issue 29)* below says what each row is).

\`\`\`
${dedup}
\`\`\`` : ''}

${threads ? threads.markdown : ''}

${notes}
`;
}
