import uWS, { type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import { splitHostPort } from '../config.js';

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
    resolve(socket === false ? null : { socket, port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket) });
  }));
}
