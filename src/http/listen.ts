// Where the public and stats listeners get their sockets: the ones systemd
// passed (socket activation, see activation.ts), or a port of their own.
// Either way the addon accepts and uWS adopts each connection: uWS's own
// listen would spin at full CPU on a socket it cannot accept from (out of
// fds), the addon pauses.
import { closeSync } from 'node:fs';
import type { TemplatedApp } from 'uWebSockets.js';
import { rateLimited, type Logger } from '../log.js';
import { acceptInto, inheritedSockets, listenSocket } from './activation.js';
import { splitHostPort } from '../net/address.js';

export interface Listening {
  /** The port bound: the configured one, or the one the kernel chose for port 0. */
  readonly port: number;
  /** Stop accepting and close the socket; open connections stay. Idempotent. */
  close(): void;
}

/** Accept errors (out of fds) are logged at most once per kind and interval. */
function acceptLogger(log: Logger): (err: Error) => void {
  const logError = rateLimited(log);
  return (err) => logError((err as NodeJS.ErrnoException).code ?? 'accept', { err }, 'accept failed; backing off');
}

/**
 * Listen on "host:port" and serve it with `app`. The port is ours alone
 * (no SO_REUSEPORT: a second instance, or a stats listener configured onto
 * the public port, fails instead of sharing it). Throws a one-line reason.
 */
export function serveOn(app: TemplatedApp, address: string, log: Logger): Listening {
  const { host, port } = splitHostPort(address);
  const socket = listenSocket(host, port);
  try {
    const acceptor = acceptInto(app, socket.fd, { onError: acceptLogger(log) });
    let open = true;
    return {
      port: socket.port,
      close() {
        if (!open) return;
        open = false;
        acceptor.stop();
        closeSync(socket.fd);
      },
    };
  } catch (err) {
    closeSync(socket.fd);
    throw err;
  }
}

/** serveOn, or resolve null when that fails. */
export function listenOn(app: TemplatedApp, address: string, log: Logger): Promise<Listening | null> {
  try {
    return Promise.resolve(serveOn(app, address, log));
  } catch {
    return Promise.resolve(null);
  }
}

export interface PublicSockets {
  /** The listening fds every serving thread accepts on. */
  readonly fds: readonly number[];
  /** What to log: "systemd:fd3", or the configured address with the port bound. */
  readonly address: string;
  /** Close the sockets we listened on ourselves (never systemd's): after every thread stopped accepting. */
  close(): void;
}

/**
 * The public listener's sockets: those systemd passed (they outlive us, so a
 * restart drops nothing), else one we listen on at `address`. The serving
 * threads accept on them (serveSockets). Rejects with a one-line reason when
 * neither works.
 */
export function publicSockets(address: string): Promise<PublicSockets> {
  let passed: ReturnType<typeof inheritedSockets>;
  try {
    passed = inheritedSockets();
  } catch (err) {
    return Promise.reject(err as Error);
  }
  // Passed for someone else (another name): systemd keeps its own copies.
  for (const fd of passed.unused) {
    try {
      closeSync(fd);
    } catch {
      // LISTEN_FDS counted an fd that is not open: nothing to close
    }
  }
  if (passed.serve.length > 0) {
    return Promise.resolve({ fds: passed.serve, address: passed.serve.map((fd) => `systemd:fd${fd}`).join(','), close: () => {} });
  }
  const { host, port } = splitHostPort(address);
  let socket: { fd: number; port: number };
  try {
    socket = listenSocket(host, port);
  } catch {
    return Promise.reject(new Error(`cannot listen on ${address}`));
  }
  let open = true;
  return Promise.resolve({
    fds: [socket.fd],
    // Port 0 asks for any free port (tests do): log the one we got.
    address: address.replace(/:\d+$/, `:${socket.port}`),
    close() {
      if (!open) return;
      open = false;
      closeSync(socket.fd);
    },
  });
}

/**
 * Accept on every public socket into `app` (a serving thread's). `batch`:
 * connections per wake-up; threads that share a socket take a few each, so
 * a burst of connections spreads over them. Throws a one-line reason.
 */
export function serveSockets(app: TemplatedApp, fds: readonly number[], log: Logger, batch: number): { stop(): void } {
  const acceptors: { stop(): void }[] = [];
  for (const fd of fds) {
    try {
      acceptors.push(acceptInto(app, fd, { onError: acceptLogger(log), batch }));
    } catch (err) {
      for (const a of acceptors) a.stop();
      throw new Error(`cannot accept on the listening socket (fd ${fd}): ${(err as Error).message}`);
    }
  }
  return { stop: () => acceptors.forEach((a) => a.stop()) };
}
