// The shipped units pass `systemd-analyze verify` and keep the hardening and
// the timing the daemon relies on.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const root = new URL('../..', import.meta.url).pathname;
const unitDir = join(root, 'systemd');
const service = readFileSync(join(unitDir, 'scratchd.service'), 'utf8');
const socket = readFileSync(join(unitDir, 'scratchd.socket'), 'utf8');

function run(cmd: string, args: string[], cwd?: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' } });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim(), error: r.error };
}

/** systemd-analyze, from Debian's systemd package (scripts/test-all.sh installs it before the suite). */
function systemdAnalyze(): string {
  const bin = run('sh', ['-c', 'command -v systemd-analyze']).out;
  if (bin === '') throw new Error('systemd-analyze is missing: scripts/test-all.sh installs systemd before the suite');
  return bin;
}

/** Directive values as written (all occurrences). */
function directive(unit: string, key: string): string[] {
  return unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
}

t.test('systemd-analyze verify', async (t) => {
  const analyze = systemdAnalyze();
  const dir = mkdtempSync(join(tmpdir(), 'scratchd-units-'));
  // verify insists that ExecStart's binary exists. /usr/bin/scratchd only does
  // once the package is installed, so verify a copy whose ExecStart is a
  // stand-in running this checkout; everything else is byte for byte the same.
  const bin = join(dir, 'scratchd');
  writeFileSync(bin, `#!/bin/sh\nexec ${process.execPath} ${join(root, 'dist/main.js')} "$@"\n`);
  chmodSync(bin, 0o755);
  writeFileSync(join(dir, 'scratchd.socket'), socket);
  writeFileSync(join(dir, 'scratchd.service'), service.replaceAll('/usr/bin/scratchd', bin));
  const copy = run(analyze, ['verify', '--man=no', 'scratchd.socket', 'scratchd.service'], dir);
  t.equal(copy.out, '', 'no complaints');
  t.equal(copy.code, 0, 'verify passes');

  // The originals: the only complaint allowed is the missing binary.
  const originals = run(analyze, ['verify', '--man=no', join(unitDir, 'scratchd.socket'), join(unitDir, 'scratchd.service')]);
  if (existsSync('/usr/bin/scratchd')) {
    t.equal(originals.code, 0, `originals verify: ${originals.out}`);
  } else {
    // Once per command that runs it (ExecStart=, ExecReload=).
    t.same([...new Set(originals.out.split('\n').filter((l) => l !== ''))],
      ['scratchd.service: Command /usr/bin/scratchd is not executable: No such file or directory'],
      'the originals differ only in the absent /usr/bin/scratchd');
  }

  const security = run(analyze, ['security', '--offline=true', '--no-pager', join(dir, 'scratchd.service')]);
  const level = /Overall exposure level for scratchd\.service: ([0-9.]+)/.exec(security.out);
  if (!level) t.comment(security.out);
  t.ok(level, 'systemd-analyze security ran');
  t.comment(`systemd-analyze security exposure: ${level?.[1]}`);
  t.ok(Number(level?.[1]) <= 2, 'exposure at most 2.0 ("OK")');
});

t.test('the units say what the daemon relies on', async (t) => {
  t.same(directive(socket, 'Accept'), ['no'], 'one daemon accepts every connection');
  t.same(directive(socket, 'FileDescriptorName'), ['http'], 'the fd is named http (inheritedSocket picks it by name)');
  t.same(directive(service, 'Type'), ['notify-reload'],
    'Type=notify-reload: the daemon sends READY=1, systemd sends SIGHUP on reload (no /bin/kill: procps is not a dependency)');
  t.same(directive(service, 'ExecStart'), ['/usr/bin/scratchd --config /etc/scratchd/config.json']);
  t.same(directive(service, 'ExecReload'), ['/usr/bin/scratchd --config /etc/scratchd/config.json --check'],
    'a reload checks the config first');
  t.notOk(/\/bin\/kill|\bkill\b/.test(service.split('\n').filter((l) => !l.startsWith('#')).join('\n')), 'no kill(1) anywhere');
  // A bad config must never fail the socket: no start limit, no exit status exempt from Restart=.
  t.same(directive(service, 'StartLimitIntervalSec'), ['0'], 'no start limit');
  t.same(directive(service, 'RestartPreventExitStatus'), [], 'exit 1 (bad config) is retried too');
  t.same(directive(service, 'Restart'), ['on-failure']);
  t.same(directive(service, 'StateDirectory'), ['scratchd'], '/var/lib/scratchd (the Kafka spool) made by systemd');
  t.same(directive(service, 'MemoryDenyWriteExecute'), [], 'no MemoryDenyWriteExecute: V8 JIT needs W+X');
  t.same(directive(service, 'CapabilityBoundingSet'), [''], 'no capabilities at all');
  for (const [k, v] of [['User', 'scratchd'], ['Group', 'scratchd'], ['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'],
    ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['PrivateDevices', 'yes'], ['ReadWritePaths', '/var/log/scratchd'],
    ['ProtectKernelTunables', 'yes'], ['ProtectKernelModules', 'yes'], ['ProtectKernelLogs', 'yes']]) {
    t.same(directive(service, k!), [v], `${k}=${v}`);
  }
  t.ok(directive(service, 'SystemCallFilter').includes('@system-service'), 'SystemCallFilter=@system-service');
  t.ok(directive(service, 'RestrictAddressFamilies').length > 0, 'RestrictAddressFamilies set');
  // systemd must not SIGKILL a drain that is still within its own timeout.
  const schema = JSON.parse(readFileSync(join(root, 'config.schema.json'), 'utf8')) as {
    properties: { shutdown: { properties: Record<string, { default: number }> } };
  };
  const drain = schema.properties.shutdown.properties;
  const needS = (drain.drainTimeoutMs!.default + drain.graceMs!.default) / 1000;
  const stopS = Number(/^(\d+)s?$/.exec(directive(service, 'TimeoutStopSec')[0] ?? '')?.[1]);
  t.ok(stopS > needS, `TimeoutStopSec ${stopS}s exceeds drain timeout + grace (${needS}s)`);
});
