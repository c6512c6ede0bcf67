/**
 * One keep-alive connection of its own, on a raw socket: requests go out on
 * it and on nothing else, so a test knows which requests shared a
 * connection (and so a serving thread), which an http.Agent does not
 * promise. Several requests may be written at once (pipelined). Only
 * answers with a Content-Length are read, which is every answer of /track.
 */
import net from 'node:net';

export interface RawAnswer {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Buffer;
}

export interface Conn {
  /** Write every request at once; resolves with their answers, in order. */
  send(requests: readonly { path: string; headers?: Record<string, string> }[]): Promise<RawAnswer[]>;
  /** Whether the connection is still the one opened (the server did not close it). */
  readonly open: boolean;
  close(): void;
}

export function connect(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let open = true;
    let want = 0;
    let got: RawAnswer[] = [];
    let done: ((a: RawAnswer[]) => void) | null = null;
    let failed: ((e: Error) => void) | null = null;
    const fail = (err: Error): void => {
      open = false;
      failed?.(err);
      done = failed = null;
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const colon = l.indexOf(':');
          headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + length) return;
        got.push({ status: Number(lines[0]!.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + length) });
        buf = buf.subarray(end + 4 + length);
        if (got.length === want && done !== null) {
          const answers = got;
          got = [];
          want = 0;
          const d = done;
          done = failed = null;
          d(answers);
        }
      }
    });
    sock.on('error', (err) => fail(err));
    sock.on('close', () => fail(new Error('the server closed the connection')));
    sock.once('connect', () => {
      sock.removeListener('error', reject);
      resolve({
        get open() { return open; },
        send(requests) {
          if (!open) return Promise.reject(new Error('connection closed'));
          return new Promise((res, rej) => {
            want = requests.length;
            done = res;
            failed = rej;
            sock.write(requests.map((r) => `GET ${r.path} HTTP/1.1\r\nHost: ${r.headers?.host ?? 'localhost'}\r\n` +
              Object.entries(r.headers ?? {}).filter(([k]) => k !== 'host').map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n').join(''));
          });
        },
        close() {
          open = false;
          sock.destroy();
        },
      });
    });
    sock.once('error', reject);
  });
}
