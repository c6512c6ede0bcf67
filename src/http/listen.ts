// Where the public and stats listeners get their sockets: the one systemd
// passed (socket activation, see activation.ts), or a port of their own.
import type { TemplatedApp, us_listen_socket, us_socket } from 'uWebSockets.js';
import { rateLimited, type Logger } from '../log.js';
import { acceptInto, inheritedSocket } from './activation.js';
import { uws } from './uws.js';

/** "host:port" → its parts; IPv6 hosts are written in brackets. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(i + 1)) };
}

export interface Listening {
  readonly socket: us_listen_socket;
  /** The port bound: the configured one, or the one the kernel chose for port 0. */
  readonly port: number;
}

const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

/**
 * Listen on "host:port", or resolve null when that fails. The port is ours
 * alone: uWS sets SO_REUSEPORT by default, which would let a second
 * instance (or a stats listener configured onto the public port) share it
 * silently instead of failing.
 */
export function listenOn(app: TemplatedApp, address: string): Promise<Listening | null> {
  const { host, port } = splitHostPort(address);
  // The typings lack the (host, port, options, cb) form the binary has.
  const listen = app.listen as unknown as (h: string, p: number, o: number, cb: (s: us_listen_socket | false) => void) => void;
  return new Promise((resolve) => listen.call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
    resolve(socket === false ? null : { socket, port: uws().us_socket_local_port(socket as unknown as us_socket) });
  }));
}

export interface Listener {
  /** What to log: "systemd:fd3", or the configured address with the port bound. */
  readonly address: string;
  /** Stop accepting; open connections stay. */
  stop(): void;
}

/**
 * The public listener: serve on the socket systemd passed (it outlives us,
 * so a restart drops nothing), else listen on `address`. Rejects with a
 * one-line reason when neither works.
 */
export async function listenPublic(app: TemplatedApp, address: string, log: Logger): Promise<Listener> {
  const inherited = inheritedSocket();
  if (inherited !== null) {
    const acceptError = rateLimited(log);
    try {
      const acceptor = acceptInto(app, inherited, { onError: (err) => acceptError('accept', { err }, 'accept failed; backing off') });
      return { address: `systemd:fd${inherited}`, stop: () => acceptor.stop() };
    } catch (err) {
      throw new Error(`cannot accept on the socket systemd passed (fd ${inherited}): ${(err as Error).message}`);
    }
  }
  const listening = await listenOn(app, address);
  if (listening === null) throw new Error(`cannot listen on ${address}`);
  // Port 0 asks for any free port (tests do): log the one we got.
  return {
    address: address.replace(/:\d+$/, `:${listening.port}`),
    stop: () => uws().us_listen_socket_close(listening.socket),
  };
}
