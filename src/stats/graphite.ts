/**
 * `stats.graphite`: every `intervalMs`, the numbers of /stats pushed to a
 * Carbon over TCP (plaintext protocol, carbon.ts), as the original's team fed
 * its dashboards from cron.
 *
 * A dead or slow Carbon costs only that sample. One connection is kept and
 * made again at the next sample when it fails; a sample finds the connection
 * still connecting or still holding an earlier sample's bytes (Carbon reads
 * slower than we write), or no connection at all, and is dropped, counted,
 * and logged rate-limited. So the bytes waiting for Carbon never exceed one
 * sample, and nothing else waits on it: the timer runs off the request path
 * and never keeps the process alive.
 */
import { Socket } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { rateLimited, type Logger } from '../log.js';
import { carbonLines } from './carbon.js';

export interface GraphiteConfig {
  host: string;
  port: number;
  prefix: string;
  intervalMs: number;
}

export interface GraphiteCounters {
  /** Samples written to the connection. */
  sent: number;
  /** Samples dropped: Carbon unreachable, still connecting, or still reading the last one. */
  dropped: number;
}

export interface Graphite {
  readonly counters: Readonly<GraphiteCounters>;
  /** Send one sample now (the timer calls this; tests may too). */
  sample(): void;
  close(): void;
}

/** A connect that has not finished in this time is given up, so a black-holed Carbon does not hold a socket. */
const CONNECT_TIMEOUT_MS = 5_000;

export function startGraphite(config: GraphiteConfig, snapshot: () => unknown, log: Logger, registry?: Registry): Graphite {
  const counters: GraphiteCounters = { sent: 0, dropped: 0 };
  if (registry) {
    new Counter({
      name: 'scratchd_graphite_samples_total',
      help: 'Samples of /stats pushed to Carbon (stats.graphite), by result: sent, or dropped (Carbon unreachable or slow).',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ result: 'sent' }, counters.sent);
        this.inc({ result: 'dropped' }, counters.dropped);
      },
    });
  }
  const warn = rateLimited(log, 60_000);
  let socket: Socket | null = null;
  let connected = false;
  let closed = false;

  // One rate-limit kind for every reason: a Carbon that goes away fails the
  // connection and drops the next sample, and that is still one line a minute.
  const note = (why: string, fields: object, msg: string): void =>
    warn('graphite', { ...fields, why, carbon: `${config.host}:${config.port}`, dropped: counters.dropped }, msg);
  const drop = (why: string, fields: object = {}): void => {
    counters.dropped++;
    note(why, fields, `graphite: sample dropped (${why})`);
  };
  const connect = (): void => {
    const s = new Socket();
    socket = s;
    connected = false;
    s.setNoDelay(true);
    s.setTimeout(CONNECT_TIMEOUT_MS, () => { if (!connected) s.destroy(new Error('connect timed out')); });
    s.on('connect', () => { connected = true; s.setTimeout(0); });
    s.on('error', (err: NodeJS.ErrnoException) => note('carbon_error', { code: err.code ?? err.message }, 'graphite: connection to Carbon failed; samples are dropped until it is back'));
    s.on('close', () => { if (socket === s) { socket = null; connected = false; } });
    // Carbon never answers on this protocol; reading keeps a half-closed peer noticed.
    s.on('data', () => {});
    s.connect(config.port, config.host);
  };

  const sample = (): void => {
    if (closed) return;
    if (socket === null) { connect(); drop('connecting'); return; }
    if (!connected) { drop('connecting'); return; }
    if (socket.writableLength > 0) { drop('carbon_slow', { waiting: socket.writableLength }); return; }
    socket.write(carbonLines(snapshot(), config.prefix, Math.floor(Date.now() / 1000)));
    counters.sent++;
  };

  connect();
  const timer = setInterval(sample, config.intervalMs);
  timer.unref();
  return {
    counters,
    sample,
    close() {
      closed = true;
      clearInterval(timer);
      socket?.destroy();
      socket = null;
    },
  };
}
