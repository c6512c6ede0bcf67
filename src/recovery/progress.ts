/**
 * The progress bar of replay and rebuild (cli-progress), on stderr and only
 * when stderr is a terminal: scripts and logs get the summary line alone.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** `value` of the total done; `lines` so far. */
  update(value: number, lines: number): void;
  stop(): void;
}

export function progressBar(label: string, total: number, unit: string): Progress {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const started = Date.now();
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {lines} Lines | {rate} Lines/s | ETA {eta_formatted}`,
    etaBuffer: 50,
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  bar.start(Math.max(total, 1), 0, { lines: 0, rate: 0, unit });
  return {
    update(value, lines) {
      const s = (Date.now() - started) / 1000;
      bar.update(value, { lines, rate: s > 0 ? Math.round(lines / s) : 0 });
    },
    stop() {
      bar.stop();
    },
  };
}
