// The medians over rounds per contender that the report's tables and the
// targets read, with every round's correctness checks.
import { roundChecks } from './checks.mjs';
import { median } from './util.mjs';

/** Per contender: medians over its rounds (and the worst round where a target names it). */
export function summarize(results, keys) {
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
