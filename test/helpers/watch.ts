// Watching a daemon while a test abuses it: a well-behaved client that keeps
// asking for pixels (its latencies and statuses), the daemon's resident
// memory from /proc, its counters from the stats listener, and raw sockets
// that report whether the server closed them.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { Daemon } from './daemon.js';
import { request } from './http.js';
import { sleep } from './wait.js';

/** The daemon's resident set size in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

export interface Watch {
  /** Latencies (ms) of the normal client's requests since the last `reset`. */
  readonly latencies: number[];
  /** Statuses (or error messages) of those requests. */
  readonly outcomes: (number | string)[];
  /** Highest VmRSS (KiB) sampled since the last `reset`. */
  readonly peakRssKiB: number;
  /** The normal client's queries that got a 200, ever: they must all be persisted. */
  readonly accepted: string[];
  reset(): void;
  p99(): number;
  stop(): Promise<void>;
}

/**
 * A normal client: one keep-alive connection asking GET /track?normal=N every
 * `everyMs`, one request at a time, plus a VmRSS sample on each round.
 */
export function watch(d: Daemon, host = 'gr.test', everyMs = 20): Watch {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let latencies: number[] = [];
  let outcomes: (number | string)[] = [];
  let peak = 0;
  const accepted: string[] = [];
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      const q = `normal=${n++}`;
      const started = performance.now();
      try {
        const r = await request(d.port, `/track?${q}`, { host, agent });
        outcomes.push(r.status);
        if (r.status === 200) accepted.push(q);
      } catch (err) {
        outcomes.push((err as Error).message);
      }
      latencies.push(performance.now() - started);
      try {
        peak = Math.max(peak, rssKiB(d.proc.pid!));
      } catch {
        // exited: the test's liveness check reports it
      }
      await sleep(everyMs);
    }
  })();
  return {
    get latencies() { return latencies; },
    get outcomes() { return outcomes; },
    get peakRssKiB() { return peak; },
    accepted,
    reset() {
      latencies = [];
      outcomes = [];
      peak = 0;
    },
    p99() {
      if (latencies.length === 0) return Infinity;
      const s = [...latencies].sort((a, b) => a - b);
      return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
    },
    async stop() {
      running = false;
      await loop;
      agent.destroy();
    },
  };
}

export interface RawResult {
  /** Everything the server sent, latin1. */
  text: string;
  /** The server closed (or reset) the connection before `waitMs`. */
  closed: boolean;
  ms: number;
}

/** Send raw bytes (in one write or as given chunks); collect the answer until the server closes or `waitMs`. */
export function rawExchange(port: number, data: string | Buffer, waitMs = 1000): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let closed = true;
    const sock = net.connect(port, '127.0.0.1', () => sock.write(data));
    const timer = setTimeout(() => {
      closed = false;
      sock.destroy();
    }, waitMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {}); // a reset counts as closed
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - started });
    });
  });
}

export interface Counts {
  rejected: Record<string, number>;
  requests: Record<string, Record<string, number>>;
  backends: Record<string, Record<string, number>>;
}

/** GET /stats from the stats listener; fails when it does not answer 200 with the counters. */
export async function stats(d: Daemon): Promise<Counts> {
  const r = await request(d.statsPort, '/stats');
  if (r.status !== 200) throw new Error(`GET /stats answered ${r.status}: ${r.body.toString()}`);
  const counts = JSON.parse(r.body.toString()) as Counts;
  for (const key of ['rejected', 'requests', 'backends'] as const) {
    if (typeof counts[key] !== 'object' || counts[key] === null) throw new Error(`GET /stats has no "${key}": ${r.body.toString()}`);
  }
  return counts;
}
