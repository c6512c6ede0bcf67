import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout (journald collects them). */
export function makeLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/**
 * Logs the first occurrence of each kind of error at once, then at most one
 * line per interval with the number suppressed meanwhile, so a full disk
 * or a dead broker cannot flood the journal.
 */
export function rateLimited(log: Logger, intervalMs = 10_000): (kind: string, fields: object, msg: string) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (kind, fields, msg) => {
    const now = Date.now();
    const seen = last.get(kind);
    if (seen !== undefined && now - seen.at < intervalMs) {
      seen.suppressed++;
      return;
    }
    log.error({ ...fields, kind, suppressed: seen?.suppressed ?? 0 }, msg);
    last.set(kind, { at: now, suppressed: 0 });
  };
}
