/**
 * What the tests of the shipped HAProxy configurations share: Debian's
 * haproxy binary, a shipped config rewritten for loopback (logging to
 * stderr, optionally an admin socket, no per-client limit: the tests' load
 * comes from one address), and a GET that gives only the status.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
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
