// How the runner prints figures: in its log and in BENCHMARKS.md.

/** µs as ms for the log: three decimals below 10 ms. */
export const ms = (us) => (us / 1000).toFixed(us < 10_000 ? 3 : 1);

export const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
export const fmtMs = (us) => (Number.isFinite(us) ? (us / 1000).toFixed(3) : '–');
export const fmtMB = (b) => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(1) : '–');
export const fmtN = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');

export function fmtCpu(groups) {
  return Object.entries(groups ?? {}).sort((a, b) => b[1] - a[1]).map(([g, ms]) => `${g} ${ms.toFixed(0)}`).join(', ');
}
