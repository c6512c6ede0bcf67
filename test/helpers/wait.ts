// Waiting, ports and sleeps for every test, in one place. Tests wait on a
// condition with a deadline, never for a fixed time that happens to be enough
// on a quiet machine: CI runs on two cores shared with other jobs. `sleep`
// is for tests about time itself (an outage that lasts, traffic that keeps
// flowing for a while), not for "long enough for X to have happened".
import { createServer, type Server } from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Generous by default: a loaded 2-core machine is slow, and a deadline only bounds a failing test. */
const DEFAULT_TIMEOUT_MS = 30_000;
const POLL_MS = 20;

/**
 * `p`'s value, or `late` if `ms` pass first. The timer is cleared as soon as
 * `p` settles: a pending one would keep the test process alive for the rest
 * of `ms` after its last test (a race with `sleep(ms)` does).
 */
export async function within<T, L>(p: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<L>((r) => { timer = setTimeout(() => r(late), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Poll `cond` (sync or async) until it holds; fail after `timeoutMs` with an
 * error naming `what` was awaited.
 */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
  await poll(what, cond, (ok) => ok, timeoutMs);
}

/**
 * Call `get` until `ok` accepts its value, and return that value; fail after
 * `timeoutMs` with the last value seen.
 */
export async function poll<T>(what: string, get: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) {
      const last = typeof v === 'boolean' ? '' : `; last: ${JSON.stringify(v)?.slice(0, 500)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await sleep(POLL_MS);
  }
}

/**
 * A loopback port nobody listens on right now. Another process may take it
 * before the caller binds it; tests that can listen on port 0 instead do.
 */
export async function freePort(): Promise<number> {
  const held = await holdPort();
  const port = held.port;
  await held.close();
  return port;
}

/**
 * A free loopback port below the kernel's ephemeral range (32768 and up), for
 * a server that is killed and must come back on the same port (a Kafka
 * broker): while it is down, no outgoing connection's local port and no
 * listen on port 0 by a test running beside it can take the port.
 */
export async function stablePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.on('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below the ephemeral range');
}

/** A loopback port held by a listening server until `close()`: for "port in use" cases. */
export function holdPort(): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      if (typeof addr !== 'object' || addr === null) return reject(new Error('no port'));
      resolve({ port: addr.port, server, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
