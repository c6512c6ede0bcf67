// Does for the tests exactly what systemd does for scratchd.socket +
// scratchd.service (Accept=no, Type=notify):
//  - holds one listening TCP socket on a free loopback port for as long as the
//    harness lives, across any number of daemon generations;
//  - starts a daemon with that socket as fd 3, LISTEN_FDS=1,
//    LISTEN_FDNAMES=http, and LISTEN_PID set in the child after fork, before
//    exec (a `sh -c 'LISTEN_PID=$$; exec "$@"'` wrapper: $$ is the pid the
//    daemon will have);
//  - gives it NOTIFY_SOCKET (an abstract unix datagram socket, `@...`) and
//    reports READY=1 / STOPPING=1 with the sender's pid (SCM_CREDENTIALS);
//  - reports exits, so a replacement starts on the same socket after the old
//    process is gone, as `systemctl restart` does.
// Node cannot hold a listening fd without also accepting on it (libuv would
// steal connections), so the socket lives in a small Python 3 helper.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { tempDir } from './daemon.js';

export const root = new URL('../..', import.meta.url).pathname;
export const mainJs = join(root, 'dist/main.js');

const HOLDER = String.raw`
import fcntl, json, os, socket, struct, sys, threading, selectors
out_lock = threading.Lock()
def emit(**ev):
    with out_lock:
        sys.stdout.write(json.dumps(ev) + "\n"); sys.stdout.flush()

lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
lsock.listen(4096)
# Keep our copy on a high fd (close-on-exec), so dup2(lfd, 3) is never a no-op.
lfd = fcntl.fcntl(lsock.fileno(), fcntl.F_DUPFD_CLOEXEC, 50)

nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
nname = "scratchd-test-notify-%d" % os.getpid()
nsock.bind("\0" + nname)
nsock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
children = {}

def reap(pid):
    _, status = os.waitpid(pid, 0)
    children.pop(pid, None)
    emit(event="exited", pid=pid,
         code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
         signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)

emit(event="listening", port=lsock.getsockname()[1], notify="@" + nname)
sel = selectors.DefaultSelector()
sel.register(sys.stdin, selectors.EVENT_READ, "cmd")
sel.register(nsock, selectors.EVENT_READ, "notify")
while True:
    for key, _ in sel.select():
        if key.data == "notify":
            msg, anc, _, _ = nsock.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = None
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", data[:12])[0]
            emit(event="notify", pid=pid, state=msg.decode())
            continue
        line = sys.stdin.readline()
        if not line:
            for pid in list(children):
                try: os.kill(pid, 9)
                except ProcessLookupError: pass
            sys.exit(0)
        cmd = json.loads(line)
        if cmd["cmd"] == "start":
            env = dict(cmd["env"], LISTEN_FDS="1", LISTEN_FDNAMES="http", NOTIFY_SOCKET="@" + nname)
            if cmd.get("plain"):  # plain listen mode: no socket passed
                for k in ("LISTEN_FDS", "LISTEN_FDNAMES"): env.pop(k)
            acts = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, cmd["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                    (os.POSIX_SPAWN_OPEN, 2, cmd["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)]
            if not cmd.get("plain"):
                acts.append((os.POSIX_SPAWN_DUP2, lfd, 3))  # dup2 clears close-on-exec on fd 3
                wrapper = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'
            else:
                wrapper = 'exec "$@"'
            pid = os.posix_spawn("/bin/sh", ["sh", "-c", wrapper, "sh"] + cmd["argv"], env, file_actions=acts)
            children[pid] = True
            emit(event="started", pid=pid, id=cmd.get("id"))
            threading.Thread(target=reap, args=(pid,), daemon=True).start()
`;

type Event =
  | { event: 'listening'; port: number; notify: string }
  | { event: 'started'; pid: number; id?: number }
  | { event: 'notify'; pid: number | null; state: string }
  | { event: 'exited'; pid: number; code: number | null; signal: number | null };

export interface Generation {
  readonly pid: number;
  /** Resolves with the exit code (null if killed by a signal). */
  readonly exited: Promise<number | null>;
  readonly notified: string[];
  /** Resolves when the daemon sent `state` (e.g. READY=1) on NOTIFY_SOCKET. */
  waitNotify(state: string, timeoutMs?: number): Promise<void>;
  /** SIGTERM (or `signal`) and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The daemon's stdout (pino JSON lines) so far, parsed. */
  logs(): Record<string, unknown>[];
  stderr(): string;
}

export interface Activator {
  /** The port of the socket the harness holds. */
  readonly port: number;
  /** Start a daemon on the held socket (or, with `plain`, with no socket passed). */
  start(argv: string[], opts?: { env?: NodeJS.ProcessEnv; plain?: boolean }): Promise<Generation>;
  /** Kill whatever still runs and release the socket. */
  close(): Promise<void>;
}

/** Hold a listening socket (port 0: any free one) the way systemd does. */
export async function holdSocket(port = 0): Promise<Activator> {
  const proc: ChildProcess = spawn('python3', ['-u', '-c', HOLDER, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const listeners = new Set<(e: Event) => void>();
  const notes = new Map<number, string[]>();
  const exits = new Map<number, { code: number | null; signal: number | null }>();
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const ev = JSON.parse(line) as Event;
    if (ev.event === 'notify' && ev.pid !== null) {
      if (!notes.has(ev.pid)) notes.set(ev.pid, []);
      notes.get(ev.pid)!.push(ev.state);
    }
    if (ev.event === 'exited') exits.set(ev.pid, ev);
    for (const l of listeners) l(ev);
  });
  const next = <E extends Event>(pred: (e: Event) => e is E, timeoutMs = 60_000): Promise<E> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(on);
        reject(new Error('socket-activation harness: timed out'));
      }, timeoutMs);
      const on = (e: Event) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        listeners.delete(on);
        resolve(e);
      };
      listeners.add(on);
    });
  const send = (cmd: object) => proc.stdin!.write(JSON.stringify(cmd) + '\n');
  const exitedProc = new Promise<void>((r) => proc.on('exit', () => r()));
  const { port: held } = await next((e): e is Extract<Event, { event: 'listening' }> => e.event === 'listening');
  const dir = tempDir('scratchd-activation-');
  let seq = 0;

  return {
    port: held,
    async start(argv, opts = {}) {
      const id = ++seq;
      const stdout = join(dir, `gen${id}.out`);
      const stderr = join(dir, `gen${id}.err`);
      writeFileSync(stdout, '');
      writeFileSync(stderr, '');
      const env = Object.fromEntries(Object.entries(opts.env ?? process.env).filter(([k, v]) =>
        v !== undefined && !k.startsWith('LISTEN_') && k !== 'NOTIFY_SOCKET' && k !== 'NODE_OPTIONS'));
      const started = next((e): e is Extract<Event, { event: 'started' }> => e.event === 'started' && e.id === id);
      send({ cmd: 'start', id, argv, env, stdout, stderr, plain: opts.plain === true });
      const { pid } = await started;
      const exited = exits.has(pid)
        ? Promise.resolve(exits.get(pid)!.code)
        : next((e): e is Extract<Event, { event: 'exited' }> => e.event === 'exited' && e.pid === pid, 600_000).then((e) => e.code);
      if (!notes.has(pid)) notes.set(pid, []);
      const gen: Generation = {
        pid,
        exited,
        notified: notes.get(pid)!,
        async waitNotify(state, timeoutMs = 60_000) {
          if (notes.get(pid)!.some((s) => s.split('\n').includes(state))) return;
          await Promise.race([
            next((e): e is Extract<Event, { event: 'notify' }> => e.event === 'notify' && e.pid === pid && e.state.split('\n').includes(state), timeoutMs),
            exited.then((code) => {
              throw new Error(`daemon exited (${code}) before ${state}: ${gen.stderr()}`);
            }),
          ]);
        },
        async stop(signal = 'SIGTERM') {
          try {
            process.kill(pid, signal);
          } catch {
            // already gone
          }
          return exited;
        },
        logs: () => readFileSync(stdout, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return { raw: l };
          }
        }),
        stderr: () => readFileSync(stderr, 'utf8'),
      };
      return gen;
    },
    async close() {
      proc.stdin!.end();
      await exitedProc;
    },
  };
}

/** Write a daemon config under a new temp dir; returns its path and the log dir. */
export function daemonConfig(config: Record<string, unknown>): { file: string; logDir: string; dir: string } {
  const dir = tempDir('scratchd-activation-cfg-');
  const logDir = join(dir, 'log');
  const full = {
    listen: '127.0.0.1:0',
    stats: { listen: '127.0.0.1:0' },
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' }],
    backends: { file: { dir: logDir } },
    ...config,
  };
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(full, null, 2));
  return { file, logDir, dir };
}

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client, so the tests see exactly what happens on the wire:
// a refused connect, a reset (ECONNRESET) and a plain close without an answer
// are told apart, and keep-alive and pipelining are under the test's control.

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The server said Connection: close. */
  close: boolean;
}

/** Why a request got no answer. */
export type FailKind = 'refused' | 'reset' | 'eof' | 'timeout' | 'other';

export class RequestFailed extends Error {
  constructor(readonly kind: FailKind, readonly code: string | undefined) {
    super(`${kind}${code === undefined ? '' : ` (${code})`}`);
  }
}

export class Http1Connection {
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending: { resolve(r: Reply): void; reject(e: Error): void }[] = [];
  private error: NodeJS.ErrnoException | undefined;
  private closed = false;
  readonly ready: Promise<void>;
  /** Resolves when the connection is gone: the error code (e.g. ECONNRESET) or undefined for a clean close. */
  readonly gone: Promise<string | undefined>;

  constructor(readonly port: number, private readonly timeoutMs = 30_000) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('close', () => reject(Http1Connection.fail(this.error, 'eof')));
    });
    this.ready.catch(() => {});
    this.gone = new Promise((resolve) => this.socket.once('close', () => resolve(this.error?.code)));
    this.socket.on('data', (c: Buffer) => this.onData(c));
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e;
    });
    this.socket.on('close', () => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(Http1Connection.fail(this.error, 'eof'));
    });
  }

  private readonly socket: net.Socket;

  private static fail(e: NodeJS.ErrnoException | undefined, fallback: FailKind): RequestFailed {
    if (e === undefined) return new RequestFailed(fallback, undefined);
    const kind: FailKind = e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : 'other';
    return new RequestFailed(kind, e.code);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Send one or more requests in a single write (pipelining when several). */
  send(paths: string[], host = 'gr.test', extraHeaders = ''): Promise<Reply>[] {
    const replies = paths.map(() => new Promise<Reply>((resolve, reject) => this.pending.push({ resolve, reject })));
    if (this.closed) {
      for (const p of this.pending.splice(0)) p.reject(Http1Connection.fail(this.error, 'eof'));
    } else {
      this.socket.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: ${host}\r\n${extraHeaders}\r\n`).join(''));
    }
    const timer = setTimeout(() => {
      for (const p of this.pending.splice(0)) p.reject(new RequestFailed('timeout', undefined));
      this.socket.destroy();
    }, this.timeoutMs);
    void Promise.allSettled(replies).then(() => clearTimeout(timer));
    return replies;
  }

  request(path: string, host?: string, extraHeaders?: string): Promise<Reply> {
    return this.send([path], host, extraHeaders)[0]!;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const head = this.buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const lines = this.buf.subarray(0, head).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.buf.length < head + 4 + length) return;
      const body = this.buf.subarray(head + 4, head + 4 + length);
      this.buf = this.buf.subarray(head + 4 + length);
      const reply: Reply = {
        status: Number(lines[0]!.split(' ')[1]),
        headers,
        body,
        close: (headers.connection ?? '').toLowerCase() === 'close',
      };
      this.pending.shift()?.resolve(reply);
    }
  }
}

/** One request on a new connection. */
export async function oneShot(port: number, path: string, host?: string): Promise<Reply> {
  const c = new Http1Connection(port);
  try {
    await c.ready;
    return await c.request(path, host, 'Connection: close\r\n');
  } finally {
    c.end();
  }
}

/** Every Line the file backend wrote under `logDir`, parsed. */
export function persisted(logDir: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const flavor of readdirSync(logDir)) {
    for (const f of readdirSync(join(logDir, flavor)).filter((n) => n.endsWith('.log'))) {
      for (const l of readFileSync(join(logDir, flavor, f), 'utf8').split('\n')) if (l !== '') out.push(JSON.parse(l) as Record<string, unknown>);
    }
  }
  return out;
}

/** Open file descriptors of process `pid`. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
