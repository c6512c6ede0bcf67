// Correctness checks: the Lines in the day files against the Values their
// queries must give and against wrk's 2xx count, the backends' persisted
// counters against the Lines in files, and the drain rounds' own checks.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Count the Lines under dir and check each equals one of the expected Values. */
export function checkLines(dir, expected) {
  let lines = 0;
  let bad = 0;
  const seen = new Map();
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.log')) {
        const buf = readFileSync(p);
        let start = 0;
        for (;;) {
          const nl = buf.indexOf(10, start);
          if (nl < 0) {
            if (start < buf.length) bad++; // a partial last line
            break;
          }
          const s = buf.toString('utf8', start, nl);
          seen.set(s, (seen.get(s) ?? 0) + 1);
          lines++;
          start = nl + 1;
        }
      }
    }
  };
  walk(dir);
  for (const [s, count] of seen) {
    let ok = false;
    try {
      ok = expected.has(JSON.stringify(JSON.parse(s)));
    } catch {}
    if (!ok) bad += count;
  }
  return { lines, bad, distinct: seen.size };
}

export function countNginxLines(file) {
  if (!existsSync(file)) return { lines: 0, bad: 0 };
  const buf = readFileSync(file);
  let lines = 0;
  let bad = 0;
  let start = 0;
  for (let nl; (nl = buf.indexOf(10, start)) >= 0; start = nl + 1) {
    lines++;
    if (lines % 997 === 0) {
      try {
        JSON.parse(buf.toString('utf8', start, nl));
      } catch {
        bad++;
      }
    }
  }
  return { lines, bad };
}

/**
 * Each round's checks: wrk saw only 2xx and no socket errors, the server
 * exited cleanly, the Lines in files match wrk's 2xx count and are each one
 * of the expected Values, every backend persisted exactly the Lines in files.
 * Marks each result's `linesOk` for the report's rounds table.
 */
export function roundChecks(results) {
  const checks = [];
  for (const r of results) {
    const label = `round ${r.round} ${r.key}`;
    const errs = r.max.socketErrors + (r.paced?.socketErrors ?? 0);
    const non2xx = r.max.status + (r.paced?.status ?? 0);
    if (non2xx > 0) checks.push({ ok: false, text: `${label}: ${non2xx} non-2xx answers` });
    if (errs > 0) checks.push({ ok: false, text: `${label}: ${errs} socket errors` });
    if (r.exit !== 0 && r.exit !== null && r.key !== 'b') checks.push({ ok: false, text: `${label}: exit ${r.exit}` });
    if (r.lines !== undefined) {
      const extra = r.lines - r.expectedOk;
      // wrk counts a request when its answer arrives: those still in flight
      // when wrk stops were answered (and logged) but not counted. At most one
      // per connection per wrk run.
      const ok = extra >= 0 && extra <= r.inFlightMax && r.bad === 0;
      r.linesOk = ok;
      checks.push({ ok, text: `${label}: ${r.lines} lines, wrk 2xx ${r.expectedOk}, in flight at wrk's cut-offs ${extra} (≤ ${r.inFlightMax}), bad ${r.bad}` });
    }
    if (r.drained !== undefined) {
      if (r.drained === null) checks.push({ ok: false, text: `${label}: no 'drained' log line (exit ${r.exit})` });
      else {
        for (const [name, b] of Object.entries(r.drained)) {
          const ok = b.persisted === r.lines && b.dropped === 0;
          checks.push({ ok, text: `${label}: ${name} backend persisted ${b.persisted}, dropped ${b.dropped}, failed ${b.failed} (lines in files ${r.lines})` });
        }
      }
    }
  }
  return checks;
}

/** The drain rounds' own correctness: every request answered 200, nothing dropped by the spool, clean exit. */
export function drainChecks(drains) {
  return drains.map((d) => {
    if (!d.drain) return { ok: false, text: `drain round ${d.round}: ${d.error ?? 'no result'}` };
    const bad = d.idle.status + d.drain.status + d.fill.status + d.idle.socketErrors + d.drain.socketErrors + d.fill.socketErrors;
    return { ok: bad === 0 && d.dropped === 0 && d.exit === 0, text: `drain round ${d.round}: non-2xx + socket errors ${bad}, spool drops ${d.dropped}, exit ${d.exit}` };
  });
}
