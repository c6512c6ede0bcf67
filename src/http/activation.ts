// systemd socket activation for uWebSockets.js.
//
// systemd (scratchd.socket, Accept=no) owns the listening socket and passes it
// as fd 3 (LISTEN_FDS/LISTEN_PID). Because systemd keeps it open across
// `systemctl restart`, connections wait in the kernel backlog while one process
// drains and the next starts: nothing is refused. uWS cannot listen on an
// inherited fd, so the native addon (native/activation.c) accepts on it from
// Node's event loop and we hand every accepted fd to `app.adoptSocket(fd)`;
// from then on uWS owns (and closes) that connection like any other.
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { TemplatedApp } from 'uWebSockets.js';

interface Addon {
  watch(fd: number, onAccept: (fds: number[], err?: string) => void): object;
  unwatch(handle: object): void;
  notify(socketPath: string, state: string): 0 | string;
}

let addon: Addon | undefined;
function native(): Addon {
  // Loaded lazily: plain `listen` mode never needs it. build/ sits next to
  // dist/ (checkout and /usr/lib/scratchd alike).
  addon ??= createRequire(import.meta.url)('../../build/Release/activation.node') as Addon;
  return addon;
}

/** `adoptSocket` exists in uWS v20.57.0 but not in its typings. */
type Adopting = TemplatedApp & { adoptSocket(fd: number): unknown };

const DECIMAL = /^[1-9][0-9]{0,9}$/;
const SD_LISTEN_FDS_START = 3;

/**
 * The listening fd systemd passed to this process (LISTEN_PID matches,
 * LISTEN_FDS >= 1), else null; clears the LISTEN_* env vars so children don't
 * inherit them. Pick by LISTEN_FDNAMES name 'http' if present, else fd 3.
 */
export function inheritedSocket(env: NodeJS.ProcessEnv = process.env): number | null {
  const pid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  // Like sd_listen_fds(1): unset whether or not they were meant for us.
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (pid === undefined || count === undefined) return null;
  if (!DECIMAL.test(pid) || Number(pid) !== process.pid) return null;
  if (!DECIMAL.test(count)) return null;
  const n = Number(count);
  if (names !== undefined) {
    const i = names.split(':').indexOf('http');
    if (i >= 0 && i < n) return SD_LISTEN_FDS_START + i;
  }
  return SD_LISTEN_FDS_START;
}

export interface AcceptOptions {
  /** Called for accept(2) errors we back off from (EMFILE, ENFILE, ENOBUFS,
   *  ENOMEM, ...) and for connections uWS refused to adopt. */
  onError?(err: Error): void;
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
  });
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

/** sd_notify(3): e.g. 'READY=1', 'STOPPING=1'. No-op without NOTIFY_SOCKET. */
export function notify(state: string): void {
  const path = process.env.NOTIFY_SOCKET;
  if (!path) return;
  native().notify(path, state); // best effort, like sd_notify: never throws on send errors
}
