// Before the runner measures: the tools it needs (wrk, nginx, taskset; Go for
// (g) and the timeline), a fresh build, and what the machine is.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { benchDir, has, log, root } from './util.mjs';

export function ensureTools() {
  const missing = [];
  if (!has('wrk')) missing.push('wrk');
  if (!has('nginx') && !existsSync('/usr/sbin/nginx')) missing.push('nginx');
  if (!has('taskset')) missing.push('util-linux');
  if (missing.length > 0) {
    if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}; run inside the trixie chroot as root`);
    log(`installing ${missing.join(' ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  }
  if (!existsSync(join(root, 'node_modules/uWebSockets.js'))) {
    log('node_modules missing: npm ci');
    execFileSync('npm', ['ci'], { stdio: 'inherit' });
  }
  const newest = (dir) => Math.max(...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs));
  if (!existsSync(join(root, 'dist/main.js')) || newest(join(root, 'src')) > statSync(join(root, 'dist/main.js')).mtimeMs
      || newest(join(root, 'src')) > newest(join(root, 'dist'))) {
    log('building: npm run build');
    execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
  }
}

export function machine() {
  const sh = (c) => {
    try {
      return execFileSync('sh', ['-c', c], { encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  };
  return {
    nproc: sh('nproc'),
    cpu: cpus()[0]?.model ?? '?',
    kernel: `${sh('uname -s')} ${release()} ${sh('uname -m')}`,
    os: sh('. /etc/os-release && echo "$PRETTY_NAME"'),
    node: process.version,
    wrk: sh('wrk -v 2>&1 | head -1'),
    nginx: sh('nginx -v 2>&1'),
    uws: JSON.parse(readFileSync(join(root, 'node_modules/uWebSockets.js/package.json'), 'utf8')).version,
    memory: sh("awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo"),
    load: sh('cat /proc/loadavg'),
    // In the chroot a worktree's .git points outside the mount: then the
    // caller may say, e.g. SCRATCHD_BENCH_COMMIT=$(git rev-parse --short HEAD).
    commit: process.env.SCRATCHD_BENCH_COMMIT
      ?? (spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim()
        || 'unknown commit (git not reachable; set SCRATCHD_BENCH_COMMIT)'),
  };
}

/**
 * (g): build bench/go with the Go toolchain if there is one (inside the
 * chroot: Debian's golang-go, installed here when missing and we are root),
 * else use SCRATCHD_BENCH_GO_BINARY (e.g. built on the host: Go binaries are
 * static, so one built outside runs in the chroot). Returns the binary or
 * null and a reason.
 */
export function ensureGo() {
  if (!has('go') && process.getuid?.() === 0 && has('apt-get')) {
    log('installing golang-go with apt-get (the Go contender and the timeline\'s load generator)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['install', '-y', '-qq', 'golang-go'], { stdio: 'inherit', env });
  }
  return has('go');
}

export function buildGo(dir) {
  if (process.env.SCRATCHD_BENCH_GO_BINARY) return { binary: process.env.SCRATCHD_BENCH_GO_BINARY, reason: null, version: 'prebuilt (SCRATCHD_BENCH_GO_BINARY)' };
  if (!ensureGo()) return { binary: null, reason: 'Go is not installed (no `go` on PATH; `apt-get install golang-go`, or set SCRATCHD_BENCH_GO_BINARY to a binary built from bench/go)' };
  const binary = join(dir, 'scratchd-go');
  const env = { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' };
  const r = spawnSync('go', ['build', '-trimpath', '-o', binary, '.'], { cwd: join(benchDir, 'go'), env, encoding: 'utf8' });
  if (r.status !== 0) return { binary: null, reason: `go build failed: ${(r.stderr || '').trim().split('\n')[0]}` };
  return { binary, reason: null, version: spawnSync('go', ['version'], { encoding: 'utf8', env }).stdout.trim() };
}
