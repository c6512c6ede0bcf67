// systemd socket activation for uWebSockets.js.
//
// systemd (scratchd.socket, Accept=no) owns the listening sockets and passes
// them from fd 3 on (LISTEN_FDS/LISTEN_PID). Because systemd keeps them open
// across `systemctl restart`, connections wait in the kernel backlog while one
// process drains and the next starts: nothing is refused. uWS cannot listen on
// an inherited fd, so the native addon (native/activation.c) accepts on it from
// Node's event loop and we hand every accepted fd to `app.adoptSocket(fd)`;
// from then on uWS owns (and closes) that connection like any other. Sockets
// we listen on ourselves go the same way (listenSocket): the addon backs off
// when fds run out, where uWS's own accept loop spins.
import { closeSync, fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from '../log.js';

interface Addon {
  watch(fd: number, onAccept: (fds: number[], err?: string) => void, batch?: number): object;
  unwatch(handle: object): void;
  listen(host: string, port: number): [fd: number, port: number];
  notifyOpen(socketPath: string): 0 | string;
  notify(state: string): 0 | string;
}

let addon: Addon | undefined;
function native(): Addon {
  // build/ sits next to dist/ (checkout and /usr/lib/scratchd alike).
  addon ??= createRequire(import.meta.url)('../../build/Release/activation.node') as Addon;
  return addon;
}

/** `adoptSocket` exists in uWS v20.57.0 but not in its typings. */
type Adopting = TemplatedApp & { adoptSocket(fd: number): unknown };

const DECIMAL = /^[1-9][0-9]{0,9}$/;
const SD_LISTEN_FDS_START = 3;

/** What systemd passed: the fds to serve on, and the others (ours to close). */
export interface Passed {
  serve: number[];
  unused: number[];
}

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false; // not open: nothing was passed
  }
}

/**
 * The listening fds systemd passed (LISTEN_FDS/LISTEN_PID, sd_listen_fds(3)):
 * every fd named 'http' in LISTEN_FDNAMES, else every fd named like fd 3
 * (systemd names each fd of a unit by its FileDescriptorName=, the unit's
 * name when unset, so a unit with two ListenStream= lines passes two fds of
 * one name). Clears the LISTEN_* env vars so children don't inherit them.
 *
 * Unlike sd_listen_fds, a LISTEN_PID naming another process is refused (throws)
 * when fd 3 is a socket: a wrapper that forked instead of exec'ing passed the
 * sockets on, and falling back to listen would leave them accepting
 * connections nobody answers.
 */
export function inheritedSockets(env: NodeJS.ProcessEnv = process.env, socketAt: (fd: number) => boolean = isSocket): Passed {
  const pid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  // Like sd_listen_fds(1): unset whether or not they were meant for us.
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  const none = { serve: [], unused: [] };
  if (pid === undefined || count === undefined || !DECIMAL.test(count)) return none;
  if (!DECIMAL.test(pid) || Number(pid) !== process.pid) {
    if (!socketAt(SD_LISTEN_FDS_START)) return none;
    throw new Error(`LISTEN_PID=${pid} is not this process (${process.pid}), yet fd ${SD_LISTEN_FDS_START} is a socket: `
      + 'start scratchd with exec, not from a process that forks it');
  }
  const fds = Array.from({ length: Number(count) }, (_, i) => SD_LISTEN_FDS_START + i);
  if (names === undefined) return { serve: fds, unused: [] };
  const named = names.split(':');
  const nameOf = (i: number): string => named[i] ?? '';
  const want = fds.some((_, i) => nameOf(i) === 'http') ? 'http' : nameOf(0);
  return {
    serve: fds.filter((_, i) => nameOf(i) === want),
    unused: fds.filter((_, i) => nameOf(i) !== want),
  };
}

/** A listening socket of our own on host:port, to accept on with acceptInto. */
export function listenSocket(host: string, port: number): { fd: number; port: number } {
  const [fd, bound] = native().listen(host, port);
  return { fd, port: bound };
}

export interface AcceptOptions {
  /** Called for accept(2) errors we back off from (EMFILE, ENFILE, ENOBUFS,
   *  ENOMEM, ...) and for connections uWS refused to adopt. */
  onError?(err: Error): void;
  /** Connections accepted per wake-up, 1..64 (default 64). */
  batch?: number;
}

/** Accept connections on `fd` and give each to uWS; returns a stopper. */
export function acceptInto(app: TemplatedApp, fd: number, opts: AcceptOptions = {}): { stop(): void } {
  const adopting = app as Adopting;
  if (typeof adopting.adoptSocket !== 'function') {
    throw new Error('this uWebSockets.js has no app.adoptSocket(fd)');
  }
  const report = (err: Error): void => {
    try {
      opts.onError?.(err);
    } catch {
      // a failing logger must not break accepting
    }
  };
  let handle: object | null = native().watch(fd, (fds, err) => {
    for (const c of fds) {
      try {
        adopting.adoptSocket(c);
      } catch (e) {
        // uWS did not take it: the fd is still ours to close, exactly once.
        try {
          closeSync(c);
        } catch {
          // already gone
        }
        report(e instanceof Error ? e : new Error(String(e)));
      }
    }
    if (err !== undefined) {
      report(Object.assign(new Error(`accept on fd ${fd}: ${err}, pausing`), { code: err }));
    }
  }, opts.batch ?? 64);
  return {
    // Stop watching; the listening fd stays open (systemd and the next
    // process keep the socket; the kernel queues connections meanwhile).
    stop(): void {
      if (handle === null) return;
      native().unwatch(handle);
      handle = null;
    },
  };
}

/**
 * Open the sd_notify socket ($NOTIFY_SOCKET) once, first thing at start:
 * later, fds may have run out. Returns an error name, or null (also when
 * there is no NOTIFY_SOCKET).
 */
export function openNotify(env: NodeJS.ProcessEnv = process.env): string | null {
  notifying = false;
  const path = env.NOTIFY_SOCKET;
  if (!path) return null;
  const r = native().notifyOpen(path);
  notifying = r === 0;
  return r === 0 ? null : r;
}

let notifying = false;

/** sd_notify(3): e.g. 'READY=1', 'STOPPING=1', on the socket openNotify opened; a failed send is logged. */
export function notify(log: Logger, state: string): boolean {
  if (!notifying) return false;
  const r = native().notify(state);
  if (r === 0) return true;
  log.error({ state, err: r }, 'sd_notify failed');
  return false;
}

/**
 * WatchdogSec=: send WATCHDOG=1 at half of WATCHDOG_USEC from the event loop,
 * so a loop that stops turning gets the process restarted. Nothing when
 * WATCHDOG_USEC is unset (or WATCHDOG_PID names another process).
 */
export function startWatchdog(log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const usec = env.WATCHDOG_USEC;
  const pid = env.WATCHDOG_PID;
  if (usec === undefined || !DECIMAL.test(usec)) return;
  if (pid !== undefined && pid !== String(process.pid)) return;
  const everyMs = Math.max(1, Math.floor(Number(usec) / 2000));
  setInterval(() => notify(log, 'WATCHDOG=1'), everyMs).unref(); // never what keeps the process alive
}
