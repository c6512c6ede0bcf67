// The targets table: issue 18's targets (and issue 14's drain target), each
// met or not met with this run's figures.
import { fmtMB, fmtMs, fmtN, fmtRatio } from './format.mjs';

/**
 * Issue 18's targets, each met / not met with the figures of this run
 * (medians over rounds unless a worst round is named), then what is measured
 * without a threshold (the Go contender, scaling).
 */
export function renderTargets(summary, extra = {}) {
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
