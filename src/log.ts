import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Each root logger's children: pino children keep their own level, so a new level is set on each. */
const families = new WeakMap<Logger, WeakRef<Logger>[]>();

/**
 * pino's level as a syslog priority (sd-daemon(3)): trace and debug 7
 * (debug), info 6, warn 4 (warning), error 3 (err), fatal 2 (crit).
 */
export function journalPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Whether fd is the journal's stream: systemd sets JOURNAL_STREAM to the
 * "device:inode" of the stdout/stderr it connects to journald, and a
 * redirection (a pipe, a file) gives the fd another identity.
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const want = env.JOURNAL_STREAM;
  if (!want) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return want === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/**
 * stdout with each line prefixed by its priority ("<3>{...}"), which
 * journald strips and files under that priority, so `journalctl -p err`
 * finds errors. pino tells a stream marked with pino.metadata the level of
 * the line it is about to write (lastLevel).
 */
function journalStdout(sync: boolean): DestinationStream {
  const out = pino.destination({ dest: 1, sync });
  return {
    [Symbol.for('pino.metadata')]: true,
    lastLevel: 30,
    write(line: string) {
      out.write(`<${journalPriority(this.lastLevel)}>${line}`);
    },
    flush: (cb?: (err?: Error) => void) => out.flush(cb),
    flushSync: () => out.flushSync(),
  } as DestinationStream & { lastLevel: number };
}

/**
 * JSON lines on stdout (journald collects them, each under its priority).
 * `sync`: every line one write (serving threads: their few lines never
 * split across another thread's).
 */
export function makeLogger(level: string, { sync = false }: { sync?: boolean } = {}): Logger {
  const family: WeakRef<Logger>[] = [];
  const opts = {
    level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime,
    onChild: (child: Logger) => family.push(new WeakRef(child)),
  };
  const root = isJournalStream(1) ? pino(opts, journalStdout(sync))
    : sync ? pino(opts, pino.destination({ dest: 1, sync: true })) : pino(opts);
  families.set(root, family);
  return root;
}

/** Set the level of a logger from makeLogger and of every child made from it (config reload). */
export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  for (const ref of families.get(root) ?? []) {
    const child = ref.deref();
    if (child !== undefined) child.level = level;
  }
}

/** Kinds remembered at once by a rateLimited logger; callers key by stable codes, so a few dozen suffice. */
const MAX_KINDS = 256;

/**
 * Logs the first occurrence of each kind of error at once, then at most one
 * line per interval with the number suppressed meanwhile, so a full disk
 * or a dead broker cannot flood the journal. `kind` must be a stable key (an
 * error code, never an error's text, which may differ on every failure).
 * At most `maxKinds` kinds are remembered: beyond that the one seen least
 * recently is forgotten (its suppressed count is logged then, if any), so
 * the map cannot grow without bound whatever the callers pass.
 */
export function rateLimited(log: Logger, intervalMs = 10_000, maxKinds = MAX_KINDS): (kind: string, fields: object, msg: string) => void {
  // A Map iterates in insertion order; re-inserting on use keeps the least
  // recently used kind first.
  const last = new Map<string, { at: number; suppressed: number }>();
  return (kind, fields, msg) => {
    const now = Date.now();
    const seen = last.get(kind);
    if (seen !== undefined && now - seen.at < intervalMs) {
      seen.suppressed++;
      last.delete(kind);
      last.set(kind, seen);
      return;
    }
    log.error({ ...fields, kind, suppressed: seen?.suppressed ?? 0 }, msg);
    last.delete(kind);
    last.set(kind, { at: now, suppressed: 0 });
    while (last.size > maxKinds) {
      const [oldKind, old] = last.entries().next().value as [string, { at: number; suppressed: number }];
      last.delete(oldKind);
      if (old.suppressed > 0) log.error({ kind: oldKind, suppressed: old.suppressed }, 'more errors of this kind were not logged');
    }
  };
}
