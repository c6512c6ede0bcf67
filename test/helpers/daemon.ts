// Starts the built daemon (dist/main.js) as a child process on free loopback
// ports, the way an operator would run it, and reads its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withoutTapHooks } from './without-tap-hooks.js';

export const root = new URL('../..', import.meta.url).pathname;
export const mainJs = join(root, 'dist/main.js');
const clockJs = join(root, 'test/helpers/clock.mjs');

/** Three flavors, as the tests use them. */
export const testFlavors = [
  { name: 'gr', hosts: ['gr.test', 'www.gr.test'], timeZone: 'Europe/Athens' },
  { name: 'tr', hosts: ['tr.test'], timeZone: 'Europe/Istanbul' },
  { name: 'uk', hosts: ['uk.test'], timeZone: 'Europe/London' },
];

export interface DaemonOptions {
  /** Merged over a test config: free ports, file backend under a new temp dir. */
  config?: Record<string, unknown>;
  /** Run as this uid/gid (root tests use 65534 to meet permission errors). */
  user?: { uid: number; gid: number };
  /** Load the controllable clock; then `setClock` works. */
  clock?: number;
  /** Called at once with the child: a test can kill it before it is ready. */
  onSpawn?: (proc: ChildProcess) => void;
}

export interface Daemon {
  readonly proc: ChildProcess;
  readonly port: number;
  /** The stats listener's port (every daemon has one). */
  readonly statsPort: number;
  readonly dir: string;
  readonly logs: Record<string, unknown>[];
  readonly config: Record<string, unknown>;
  /** Wait for a log line matching `pred`. */
  waitLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Move the daemon's clock (Date.now) to `time`, ms since the epoch. */
  setClock(time: number): Promise<void>;
  /** Send `signal` and resolve with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Temp dirs made by this test process, removed when it exits. */
const made = new Set<string>();
process.once('exit', () => {
  if (process.env.SCRATCHD_KEEP_TEST_DIRS) return;
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch { /* a mount point still in use: left for the teardown that unmounts it */ }
  }
});

/** A new dir under the system temp dir, removed when the test process exits (SCRATCHD_KEEP_TEST_DIRS=1 keeps it). */
export function tempDir(prefix = 'scratchd-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const dir = tempDir();
  const extra = (opts.config ?? {}) as { backends?: { file?: object } };
  const config = {
    listen: '127.0.0.1:0',
    stats: { listen: '127.0.0.1:0' },
    flavors: testFlavors,
    // Loss windows and replay progress under the test's own dir, never /var/lib/scratchd.
    stateDir: join(dir, 'state'),
    ...extra,
    backends: { ...extra.backends, file: { dir: join(dir, 'log'), ...extra.backends?.file } },
  };
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  if (opts.user !== undefined) chownSync(dir, opts.user.uid, opts.user.gid);

  const args = opts.clock === undefined ? [] : ['--import', clockJs];
  const proc = spawn(...withoutTapHooks(process.execPath, [...args, mainJs, '--config', configFile]), {
    stdio: ['ignore', 'pipe', 'pipe', ...(opts.clock === undefined ? [] : ['ipc' as const])],
    // Without tap's process-info hooks (without-tap-hooks.ts): the daemon runs as in production.
    env: { ...process.env, SCRATCHD_TEST_CLOCK: opts.clock === undefined ? '' : String(opts.clock) },
    ...(opts.user ?? {}),
  });
  opts.onSpawn?.(proc);
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let buffered = '';
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ raw: line });
      }
      for (const w of waiters) w();
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => {
    for (const w of waiters) w();
    resolve(code);
  }));

  // Generous: only a failing start waits this long, and CI's two cores are shared.
  const waitLog: Daemon['waitLog'] = (pred, timeoutMs = 60_000) => new Promise((resolve, reject) => {
    const check = () => {
      const found = logs.find(pred);
      if (found !== undefined) {
        done();
        resolve(found);
      } else if (proc.exitCode !== null || proc.signalCode !== null) {
        done();
        reject(new Error(`daemon exited (${proc.exitCode ?? proc.signalCode}): ${stderr}\n${JSON.stringify(logs.slice(-5))}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no such log line within ${timeoutMs} ms; stderr: ${stderr}; last: ${JSON.stringify(logs.slice(-5))}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });

  let port: number;
  let statsPort: number;
  try {
    const serving = await waitLog((l) => l.msg === 'serving');
    port = Number(String(serving.listen).split(':').pop());
    // Logged before "serving", so already here.
    const statsReady = logs.find((l) => l.msg === 'stats listener ready');
    if (statsReady === undefined) throw new Error('the daemon serves without logging "stats listener ready"');
    statsPort = Number(statsReady.port);
  } catch (err) {
    proc.kill('SIGKILL'); // a daemon the test cannot use must not outlive it
    throw err;
  }

  return {
    proc, port, statsPort, dir, logs, config, waitLog, exited,
    setClock: (time) => new Promise((resolve) => {
      proc.once('message', () => resolve());
      proc.send({ clock: time });
    }),
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
