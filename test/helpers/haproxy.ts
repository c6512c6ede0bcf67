/**
 * What the tests of the shipped HAProxy configurations share: Debian's
 * haproxy binary, a shipped config rewritten for loopback (logging to
 * stderr, optionally an admin socket, no per-client limit: the tests' load
 * comes from one address), its runtime API, GETs (the status, or the whole
 * answer) and the gr Lines a daemon wrote.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { root } from './daemon.js';

export function haproxyBin(): string {
  return execFileSync('sh', ['-c', 'command -v haproxy || ls /usr/sbin/haproxy'], { encoding: 'utf8' }).trim().split('\n')[0]!;
}

/**
 * deploy/<file> with its `global` section replaced (stderr log, `admin`
 * socket if given), each [pattern, line] replacement made, and the
 * per-client 429 rule removed (haproxy-limits.test.ts tests that); throws
 * unless every line of `want` is then in it.
 */
export function loopbackConfig(file: string, replace: [RegExp, string][], want: string[], admin?: string): string {
  let out = readFileSync(join(root, 'deploy', file), 'utf8')
    .replace(/^global\n(?:\t.*\n|\s*#.*\n)*/m, `global\n\tlog stderr format raw local0 info\n${admin === undefined ? '' : `\tstats socket ${admin} mode 600 level admin\n`}\n`)
    .replace(/^\thttp-request deny deny_status 429 .*\n/m, '');
  for (const [pattern, line] of replace) out = out.replace(pattern, line);
  for (const w of want) if (!out.includes(w)) throw new Error(`deploy/${file}: could not set "${w}"`);
  return out;
}

/** One command on HAProxy's runtime API (the admin socket of loopbackConfig): its whole answer. */
export function admin(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const c = net.createConnection(socket, () => c.end(`${command}\n`));
    c.setEncoding('utf8').on('data', (x: string) => { out += x; }).on('end', () => resolve(out)).on('error', reject);
  });
}

/** The requests HAProxy has handed to `backend`/`server` so far (`show stat`'s stot; health checks are not among them). */
export async function serverSessions(socket: string, backend: string, server: string): Promise<number> {
  const [head = '', ...rows] = (await admin(socket, 'show stat')).split('\n');
  const column = head.replace(/^# /, '').split(',').indexOf('stot');
  const row = rows.find((r) => r.startsWith(`${backend},${server},`));
  if (column < 0 || row === undefined) throw new Error(`show stat has no stot for ${backend}/${server}: ${head}`);
  return Number(row.split(',')[column]);
}

/** GET with Host gr.test: the status only. */
export function getStatus(port: number, path: string, agent: http.Agent | false = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent, headers: { host: 'gr.test' } }, (res) => {
      res.resume().on('end', () => resolve(res.statusCode!));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** A GET through HAProxy (or straight to scratchd), as a browser on `localAddress` would send it; the whole answer. */
export interface Answer { status: number; body: string; headers?: http.IncomingHttpHeaders }

export function hit(port: number, path: string, opts: { agent?: http.Agent; localAddress?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path, agent: opts.agent ?? false, localAddress: opts.localAddress,
      headers: { host: opts.host ?? 'gr.test', ...opts.headers },
    }, (res) => {
      let body = '';
      res.setEncoding('latin1').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Every Line in the gr day files under a daemon's log dir, oldest day first. */
export function grLines(dir: string): Record<string, string>[] {
  const d = join(dir, 'gr');
  if (!existsSync(d)) return [];
  return readdirSync(d).filter((f) => f.endsWith('.log')).sort()
    .flatMap((f) => readFileSync(join(d, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, string>));
}
