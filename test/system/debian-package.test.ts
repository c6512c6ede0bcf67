// The Debian package, end to end, with the real dpkg/apt of the trixie chroot
// (tests run there, as root): build it (scripts/build-deb.sh, in a copy under
// /tmp; or take the one SCRATCHD_TEST_DEB names, as scripts/test-all.sh
// builds it once), install it, run the installed daemon as its own user,
// upgrade it (the same .deb repacked as a higher version with a changed
// conffile) keeping a locally changed conffile, remove and purge it. No systemd runs as
// PID 1 here: the units are checked with `systemd-analyze verify`.
//
// It changes the chroot (a package, a system user, /var/log/scratchd) and
// puts it back at the end; a lock keeps two runs (other worktrees share the
// chroot) from meeting. It runs in parallel with the other system tests: none
// of them uses what it changes, and every apt call waits for the dpkg lock.
// The longest system test, its name sorts first so that tap starts it first.
import { execFile, execFileSync, spawn, type ChildProcess, type ExecFileOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { root, tempDir } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { sleep, until } from '../helpers/wait.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const execPlain = promisify(execFile);
/** Every command without tap's process-info hooks (test/helpers/without-tap-hooks.ts). */
const run = (cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<{ stdout: string; stderr: string }> =>
  execPlain(...withoutTapHooks(cmd, args), { ...opts, encoding: 'utf8' });
const pkgVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const upVersion = `${pkgVersion}+pkgtest1`;
const LOCK = '/var/lock/scratchd-package-test';
// What a unit or an admin's shell gives the daemon: none of tap's NODE_OPTIONS
// (and no process-info hooks: every command here starts through withoutTapHooks).
const cleanEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' };
const aptOpts = ['-y', '-q', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300',
  '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];
const unitsInTree = existsSync(join(root, 'systemd/scratchd.socket')) && existsSync(join(root, 'systemd/scratchd.service'));

t.setTimeout(9 * 60_000);

if (process.getuid?.() !== 0 || !existsSync('/etc/debian_version')) {
  t.fail('the package test needs root on Debian: run it in the trixie chroot (../shared/trixie npx tap test/system/debian-package.test.ts)');
  process.exit(1);
}

function sh(cmd: string, args: string[]): string;
function sh(cmd: string, opts: { env: NodeJS.ProcessEnv }, args: string[]): string;
function sh(cmd: string, a: string[] | { env: NodeJS.ProcessEnv }, b?: string[]): string {
  const [env, args] = Array.isArray(a) ? [process.env, a] : [a.env, b!];
  return execFileSync(...withoutTapHooks(cmd, args), { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function shOk(cmd: string, args: string[]): boolean {
  try {
    sh(cmd, args);
    return true;
  } catch {
    return false;
  }
}

/** apt-get with stdin closed: a conffile question would fail the call, never hang it. Its output, stderr (the maintainer scripts' messages) included. */
function apt(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(...withoutTapHooks('apt-get', [...aptOpts, ...args]), { env: aptEnv, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`apt-get ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(`${stdout}${stderr}`);
    });
    child.stdin?.end();
  });
}

function installedVersion(): string | null {
  try {
    const out = sh('dpkg-query', ['-W', '-f=${db:Status-Abbrev} ${Version}', 'scratchd']);
    return out.startsWith('ii') ? out.slice(4).trim() : null;
  } catch {
    return null;
  }
}

function isPackageKnown(): boolean {
  try {
    return sh('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', 'scratchd']).trim() !== 'un';
  } catch {
    return false;
  }
}

/** One run at a time across worktrees: mkdir is atomic; a dead holder's lock is taken over. */
async function lock(): Promise<void> {
  const deadline = Date.now() + 8 * 60_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      return;
    } catch {
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(LOCK, 'pid'), 'utf8'));
      } catch { /* being created or removed */ }
      if (Number.isInteger(holder) && !existsSync(`/proc/${holder}`)) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${LOCK} held by pid ${holder}`);
      await sleep(1000);
    }
  }
}

/** Leave the chroot as we found it: no package, no user, no data dir. */
function restore(): void {
  if (isPackageKnown()) shOk('dpkg', ['--purge', 'scratchd']);
  rmSync('/var/log/scratchd', { recursive: true, force: true });
  rmSync('/var/lib/scratchd', { recursive: true, force: true });
  rmSync('/etc/scratchd', { recursive: true, force: true });
  if (shOk('getent', ['passwd', 'scratchd'])) shOk('userdel', ['scratchd']);
  if (shOk('getent', ['group', 'scratchd'])) shOk('groupdel', ['scratchd']);
}

interface Running { proc: ChildProcess; port: number; logs: Record<string, unknown>[]; exited: Promise<number | null>; stderr: () => string }

const asScratchd = ['--reuid', 'scratchd', '--regid', 'scratchd', '--init-groups', '--'];

// What systemd does for scratchd.socket + scratchd.service, without systemd:
// a listening socket as fd 3, LISTEN_FDS/LISTEN_PID for the pid that exec()s
// through setpriv and /usr/bin/scratchd into node.
const activate = `
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
    s.close()
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
os.execvp("setpriv", ["setpriv", *sys.argv[3:], "/usr/bin/scratchd", "--config", sys.argv[2]])
`;

/** The installed /usr/bin/scratchd as the scratchd user, the way the unit runs it. */
async function runInstalled(config: string, activated = false): Promise<Running> {
  const portFile = join(work, `port-${Date.now()}`);
  const proc = activated
    ? spawn(...withoutTapHooks('python3', ['-c', activate, portFile, config, ...asScratchd]), { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', env: cleanEnv })
    : spawn(...withoutTapHooks('setpriv', [...asScratchd, '/usr/bin/scratchd', '--config', config]), { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', env: cleanEnv });
  const logs: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  let serving: Record<string, unknown> | undefined;
  while ((serving = logs.find((l) => l.msg === 'serving')) === undefined) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`installed scratchd did not start (exit ${proc.exitCode}): ${err} ${JSON.stringify(logs)}`);
    }
    await sleep(20);
  }
  const port = activated ? Number(readFileSync(portFile, 'utf8')) : Number(String(serving.listen).split(':').pop());
  return { proc, logs, exited, stderr: () => err, port };
}

/** Every line of every gr day file under /var/log/scratchd. */
function grLines(): Record<string, unknown>[] {
  const dir = '/var/log/scratchd/gr';
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /^gr-\d{4}-\d\d-\d\d\.log$/.test(f)).sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>));
}

const work = tempDir('scratchd-pkgtest-');
chmodSync(work, 0o755); // the scratchd user reads the test config from here

t.before(async () => {
  await lock();
  restore();
  // What building and checking need; the chroot installs no recommends.
  const need = ['debhelper', 'dpkg-dev', 'lintian', 'systemd', 'fakeroot'].filter((p) => !shOk('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', p]) || !sh('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', p]).startsWith('ii'));
  if (need.length > 0) {
    try {
      await apt('install', ...need);
    } catch {
      await apt('update');
      await apt('install', ...need);
    }
  }
});

t.teardown(() => {
  try {
    restore();
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(LOCK, { recursive: true, force: true });
  }
});

let deb1 = '';
let deb2 = '';
/** A .deb built elsewhere from this tree (scripts/test-all.sh builds one for this test and the boot test). */
const givenDeb = process.env.SCRATCHD_TEST_DEB || undefined;

/**
 * The upgrade's .deb: v1 unpacked and packed again as `version`, with a
 * changed conffile. What dpkg and the daemon see of a new version: the
 * control Version, package.json (--version reads it), the conffile; a second
 * full build would give the same in minutes instead of seconds.
 */
function repack(deb: string, version: string, conffile: string, outDir: string): string {
  const tree = join(work, 'repack');
  rmSync(tree, { recursive: true, force: true });
  sh('dpkg-deb', ['-R', deb, tree]);
  const control = join(tree, 'DEBIAN/control');
  writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${version}`));
  const pkgJson = join(tree, 'usr/lib/scratchd/package.json');
  const p = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
  p.version = version;
  writeFileSync(pkgJson, JSON.stringify(p, null, 2) + '\n');
  // md5sums lists every file but the conffiles (dpkg keeps their sums itself).
  const sums = join(tree, 'DEBIAN/md5sums');
  const pkgSum = sh('md5sum', [pkgJson]).split(' ')[0];
  writeFileSync(sums, readFileSync(sums, 'utf8').replace(/^[0-9a-f]{32}(  usr\/lib\/scratchd\/package\.json)$/m, `${pkgSum}$1`));
  writeFileSync(join(tree, 'etc/scratchd/config.json'), readFileSync(conffile));
  mkdirSync(outDir, { recursive: true });
  const arch = sh('dpkg-deb', ['-f', deb, 'Architecture']).trim();
  const out = join(outDir, `scratchd_${version}_${arch}.deb`);
  // gzip at its fastest: a test package, packed in seconds.
  sh('dpkg-deb', ['-Zgzip', '-z1', '--build', tree, out]);
  rmSync(tree, { recursive: true, force: true });
  return out;
}

t.test('build: the .deb from a copy of the tree (or SCRATCHD_TEST_DEB), lintian without errors; the upgrade .deb', async (t) => {
  // The upgrade ships a changed conffile too, so dpkg has a conffile question
  // to answer (force-confold: keep the local one, no prompt).
  const packaged = JSON.parse(readFileSync(join(root, 'debian/config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(work, 'config-v2.json'), JSON.stringify({ ...packaged, log: { level: 'info' }, shutdown: { drainTimeoutMs: 15000 } }, null, 2) + '\n');
  const listing = () => sh('sh', ['-c', 'cd "$0" && find . -maxdepth 2 ! -path "./node_modules*" ! -path "./.tap*" ! -path "./dist*" | sort', root]);
  const before = listing();
  let lintianOut: string;
  if (givenDeb !== undefined) {
    // scripts/test-all.sh builds it once (with --lintian) for this test and the
    // boot test, beside the first tiers: normally there by now. It creates
    // <deb>.failed when the build failed.
    await until(`${givenDeb} (or ${givenDeb}.failed)`, () => existsSync(givenDeb) || existsSync(`${givenDeb}.failed`), 8 * 60_000);
    if (!existsSync(givenDeb)) throw new Error(`building ${givenDeb} failed (${givenDeb}.failed): see scripts/test-all.sh's output`);
    deb1 = givenDeb;
    t.comment(`the .deb given by SCRATCHD_TEST_DEB: ${deb1}`);
    const report = join(dirname(deb1), 'lintian.txt');
    if (!existsSync(report)) throw new Error(`${report} missing: build SCRATCHD_TEST_DEB with scripts/build-deb.sh --lintian`);
    lintianOut = readFileSync(report, 'utf8');
  } else {
    const started = Date.now();
    const b1 = await run(join(root, 'scripts/build-deb.sh'), ['--lintian', '--out', join(work, 'v1')], { maxBuffer: 256 << 20 });
    t.comment(`built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    deb1 = b1.stdout.trim().split('\n').pop()!;
    lintianOut = b1.stderr;
  }
  deb2 = repack(deb1, upVersion, join(work, 'config-v2.json'), join(work, 'v2'));
  t.match(deb1, new RegExp(`/scratchd_${pkgVersion.replace(/\./g, '\\.')}_(amd64|arm64)\\.deb$`));
  t.ok(existsSync(deb1) && existsSync(deb2), 'both .debs exist');
  t.equal(sh('dpkg-deb', ['-f', deb2, 'Version']).trim(), upVersion, 'the upgrade .deb has the higher version');
  const lintian = lintianOut.split('\n').filter((l) => /^[EW]: /.test(l));
  t.same(lintian.filter((l) => l.startsWith('E: ')), [], 'no lintian errors');
  t.same(lintian, [], 'no lintian warnings either');
  t.equal(listing(), before, 'the checkout is left as it was');

  const fields = sh('dpkg-deb', ['-f', deb1, 'Depends', 'Architecture']);
  t.match(fields, /nodejs \(>= 20\.15~\)/, 'node 20.15+: the spool checksums with zlib.crc32');
  // The native modules are built for Node ABI 115 (20.x): a nodejs 21+ must
  // not satisfy Depends. Every nodejs relation, judged by dpkg itself.
  const nodeRelations = [...fields.matchAll(/\bnodejs \((<<|<=|=|>=|>>) ([^)]+)\)/g)].map((m) => [m[1]!, m[2]!] as const);
  const satisfies = (version: string) => nodeRelations.every(([op, v]) =>
    shOk('dpkg', ['--compare-versions', version, { '<<': 'lt', '<=': 'le', '=': 'eq', '>=': 'ge', '>>': 'gt' }[op]!, v]));
  t.ok(satisfies('20.19.2+dfsg-1'), "trixie's nodejs 20.19.2 satisfies Depends");
  t.notOk(satisfies('20.14.0+dfsg-1'), 'nodejs 20.14 does not (no zlib.crc32)');
  for (const v of ['21.0.0~rc1-1', '21.7.3+dfsg-1', '22.14.0+dfsg-1', '24.0.0-1']) t.notOk(satisfies(v), `nodejs ${v} does not (another ABI)`);
  t.match(fields, /libnode115/);
  t.match(fields, /libc6 \(>= 2\.3\d\)/, 'libc from the native modules');
  const files = sh('dpkg-deb', ['-c', deb1]).split('\n').map((l) => l.replace(/^.* \.\//, '/')).filter((l) => l !== '/');
  for (const f of ['/usr/bin/scratchd', '/etc/scratchd/config.json', '/usr/lib/scratchd/dist/main.js', '/usr/lib/scratchd/package.json',
    '/usr/lib/scratchd/config.schema.json', '/usr/lib/scratchd/node_modules/node-rdkafka/build/Release/node-librdkafka.node',
    '/usr/lib/scratchd/node_modules/node-rdkafka/build/deps/librdkafka.so.1', '/usr/share/man/man8/scratchd.8.gz']) {
    t.ok(files.includes(f), `ships ${f}`);
  }
  const uws = files.filter((f) => f.endsWith('.node') && f.includes('/uWebSockets.js/'));
  t.same(uws.length, 1, 'one uWebSockets.js binary');
  t.match(uws[0], /uws_linux_(x64|arm64)_115\.node$/, 'linux, this arch, Node ABI 115');
  t.notOk(files.some((f) => f.includes('/node_modules/typescript/') || f.includes('/node_modules/tap/') || f.includes('/node-rdkafka/deps/')), 'no dev dependencies, no librdkafka sources');
  if (existsSync(join(root, 'binding.gyp'))) t.ok(files.includes('/usr/lib/scratchd/build/Release/activation.node'), 'ships the socket-activation addon');
  if (existsSync(join(root, 'README.md'))) t.ok(files.includes('/usr/share/doc/scratchd/README.md'), 'ships README.md');
  // The README links into docs/: each page beside it, uncompressed, so the links work.
  if (existsSync(join(root, 'docs'))) {
    for (const f of readdirSync(join(root, 'docs')).filter((n) => n.endsWith('.md'))) {
      t.ok(files.includes(`/usr/share/doc/scratchd/docs/${f}`), `ships docs/${f} uncompressed`);
    }
  }
  for (const f of ['haproxy.cfg', 'backup-host/scratchd.socket.d/listen.conf', 'backup-host/scratchd.service.d/paths.conf']) {
    t.ok(files.includes(`/usr/share/doc/scratchd/examples/${f}`), `ships the example ${f} uncompressed`);
  }
  // The man page: retention through retainDays (a tmpfiles.d age rule would
  // delete .log files and leave their .done manifests), and every subcommand.
  const man = join(work, 'man');
  sh('dpkg-deb', ['-x', deb1, man]);
  const page = sh('sh', ['-c', 'zcat "$0" | MANWIDTH=200 man -l - 2>/dev/null || zcat "$0"', join(man, 'usr/share/man/man8/scratchd.8.gz')]);
  t.notMatch(page, /tmpfiles\.d\S* line|- - - \d+d/, 'no tmpfiles.d retention line');
  t.match(page, /retainDays/, 'retention: backends.file.retainDays');
  for (const sub of ['replay', 'rebuild', 'spool']) t.match(page, new RegExp(`scratchd ${sub} --config`), `scratchd ${sub} in the synopsis`);
  if (unitsInTree) {
    t.ok(files.includes('/usr/lib/systemd/system/scratchd.socket'), 'ships the socket unit');
    t.ok(files.includes('/usr/lib/systemd/system/scratchd.service'), 'ships the service unit');
    // What the maintainer scripts do under a running systemd (not here).
    const ctl = join(work, 'ctl');
    sh('dpkg-deb', ['-e', deb1, ctl]);
    const postinst = readFileSync(join(ctl, 'postinst'), 'utf8');
    t.match(postinst, /deb-systemd-helper enable 'scratchd\.socket'/, 'postinst enables the socket');
    t.match(postinst, /deb-systemd-invoke start 'scratchd\.socket'/, '… and starts it');
    t.notMatch(postinst, /(restart|\$_dh_action) 'scratchd\.socket'/, 'an upgrade never restarts the socket (it would refuse connections)');
    // The service's restart is the postinst's own, after the new version's
    // --check as scratchd; debhelper's unconditional one is gone.
    t.notMatch(postinst, /try-restart 'scratchd\.service'/, 'no restart without a check');
    t.match(postinst, /--reuid scratchd[^]*--check[^]*deb-systemd-invoke try-restart scratchd\.service/, 'an upgrade restarts the service if it runs, once --check passed');
    const prerm = readFileSync(join(ctl, 'prerm'), 'utf8');
    t.notMatch(prerm, /upgrade[^]*stop 'scratchd\.service'/, 'the prerm does not stop it on upgrade');
  }
});

t.test('install: user, log dir, conffile, binary, units', async (t) => {
  await apt('install', deb1);
  t.equal(installedVersion(), pkgVersion);
  const pw = sh('getent', ['passwd', 'scratchd']).trim().split(':');
  t.ok(Number(pw[2]) < 1000, `system uid (${pw[2]})`);
  t.match(pw[6], /nologin$/, 'no login shell');
  const st = statSync('/var/log/scratchd');
  t.equal(st.mode & 0o7777, 0o750, '/var/log/scratchd is 0750');
  t.equal(st.uid, Number(pw[2]), '… owned by scratchd');
  t.match(sh('dpkg-query', ['-W', '-f=${Conffiles}', 'scratchd']), /\/etc\/scratchd\/config\.json [0-9a-f]{32}/, 'config.json is a conffile');
  // It may hold a Kafka sasl.password.
  t.equal(sh('stat', ['-c', '%a %U:%G', '/etc/scratchd/config.json']).trim(), '640 root:scratchd', 'the conffile is 0640 root:scratchd');
  t.equal(sh('/usr/bin/scratchd', { env: cleanEnv }, ['--version']).trim(), `scratchd ${pkgVersion}`);
  t.equal(sh('/usr/bin/scratchd', { env: cleanEnv }, ['--check', '--config', '/etc/scratchd/config.json']).trim(), '/etc/scratchd/config.json: ok', '--check passes on the conffile');
  const cfg = JSON.parse(readFileSync('/etc/scratchd/config.json', 'utf8')) as { backends: { file: { dir: string }; kafka: { enabled: boolean } }; listen: string };
  t.equal(cfg.backends.file.dir, '/var/log/scratchd');
  t.equal(cfg.backends.kafka.enabled, false, 'Kafka off until configured');
  t.match(cfg.listen, /^127\.0\.0\.1:/, 'listens on loopback, behind HAProxy');
  // Not node_exporter's 9100, nor any port Prometheus allocates (9090-9999).
  const statsPort = Number((cfg as unknown as { stats: { listen: string } }).stats.listen.split(':').pop());
  t.ok(statsPort < 9090 || statsPort > 9999, `stats on ${statsPort}, outside Prometheus' 9090-9999`);

  if (!unitsInTree) {
    t.comment('systemd/scratchd.{socket,service} are not in the tree yet: units not checked');
    return;
  }
  const verify = await run('systemd-analyze', ['verify', '--man=no', '/usr/lib/systemd/system/scratchd.socket', '/usr/lib/systemd/system/scratchd.service'])
    .then(({ stdout, stderr }) => ({ code: 0, out: stdout + stderr }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }));
  t.equal(verify.code, 0, `systemd-analyze verify: ${verify.out}`);
  t.equal(verify.out.split('\n').filter((l) => /scratchd/.test(l)).join('\n'), '', 'no complaints about our units');
  t.equal(sh('sh', ['-c', 'systemctl is-enabled scratchd.socket || true']).trim(), 'enabled', 'the socket is enabled');
  t.match(sh('sh', ['-c', 'systemctl is-enabled scratchd.service || true']).trim(), /^(disabled|static|indirect|enabled)$/, 'the service is started by the socket');
});

t.test('run: the installed daemon as scratchd writes beacons to /var/log/scratchd', async (t) => {
  // The packaged config on free ports (8080 may be taken on a shared host).
  const cfg = JSON.parse(readFileSync('/etc/scratchd/config.json', 'utf8')) as Record<string, unknown>;
  const config = join(work, 'run.json');
  writeFileSync(config, JSON.stringify({ ...cfg, listen: '127.0.0.1:0', stats: { listen: '127.0.0.1:0' } }));
  chmodSync(config, 0o644);
  const d = await runInstalled(config);
  try {
    const tag = `pkg${process.pid}`;
    for (let i = 0; i < 20; i++) {
      const r = await request(d.port, `/track?tag=${tag}&n=${i}`, { host: 'www.example.gr' });
      t.equal(r.status, 200, `beacon ${i}`);
    }
    const post = await request(d.port, '/track', { host: 'example.gr', method: 'POST', body: `tag=${tag}&n=post`, headers: { 'content-type': 'text/plain' } });
    t.equal(post.status, 204, 'sendBeacon POST');
    t.equal((await request(d.port, '/health')).status, 200, '/health');
    d.proc.kill('SIGTERM');
    t.equal(await d.exited, 0, `clean exit on SIGTERM ${d.stderr()}`);
    // Kafka on (to a broker that is not there): --check loads the shipped
    // node-rdkafka and lets librdkafka check its settings.
    const kafka = join(work, 'kafka.json');
    writeFileSync(kafka, JSON.stringify({ ...cfg, backends: { ...(cfg.backends as object), kafka: { enabled: true, rdkafka: { 'metadata.broker.list': '127.0.0.1:9', 'linger.ms': 5 } } } }));
    chmodSync(kafka, 0o644);
    t.equal(sh('setpriv', { env: cleanEnv }, ['--reuid', 'scratchd', '--regid', 'scratchd', '--init-groups', '--', '/usr/bin/scratchd', '--check', '--config', kafka]).trim(),
      `${kafka}: ok`, '--check with Kafka on loads the packaged node-rdkafka');
    const mine = grLines().filter((l) => l.tag === tag).map((l) => l.n);
    t.same(mine.sort(), [...Array.from({ length: 20 }, (_, i) => String(i)), 'post'].sort(), 'every beacon is in /var/log/scratchd/gr/gr-<day>.log');
    const file = readdirSync('/var/log/scratchd/gr').find((f) => f.endsWith('.log'))!;
    const st = statSync(join('/var/log/scratchd/gr', file));
    t.equal(st.uid, Number(sh('id', ['-u', 'scratchd']).trim()), 'the day file belongs to scratchd');
    t.equal(st.mode & 0o777, 0o640, 'the day file is 0640');
  } finally {
    d.proc.kill('SIGKILL');
  }
});

t.test('socket activation: the installed daemon accepts on the socket it is passed', async (t) => {
  if (!unitsInTree) return t.comment('no socket activation in the tree yet');
  const cfg = JSON.parse(readFileSync('/etc/scratchd/config.json', 'utf8')) as Record<string, unknown>;
  const config = join(work, 'activated.json');
  // listen stays the packaged 127.0.0.1:8080: ignored when a socket is passed.
  writeFileSync(config, JSON.stringify({ ...cfg, stats: { listen: '127.0.0.1:0' } }));
  chmodSync(config, 0o644);
  const d = await runInstalled(config, true);
  try {
    t.equal(d.logs.find((l) => l.msg === 'serving')?.listen, 'systemd:fd3', 'serves on the passed fd');
    const tag = `act${process.pid}`;
    for (let i = 0; i < 10; i++) t.equal((await request(d.port, `/track?tag=${tag}&n=${i}`, { host: 'www.example.gr' })).status, 200);
    d.proc.kill('SIGTERM');
    t.equal(await d.exited, 0, `clean exit on SIGTERM ${d.stderr()}`);
    t.equal(grLines().filter((l) => l.tag === tag).length, 10, 'every beacon in the day file');
  } finally {
    d.proc.kill('SIGKILL');
  }
});

t.test('upgrade: new version, locally changed conffile kept without a prompt', async (t) => {
  const uid = sh('id', ['-u', 'scratchd']).trim();
  const before = grLines().length;
  const local = JSON.parse(readFileSync('/etc/scratchd/config.json', 'utf8')) as Record<string, unknown>;
  local.log = { level: 'warn' };
  const localText = JSON.stringify(local, null, 2) + '\n';
  writeFileSync('/etc/scratchd/config.json', localText);
  // stdin closed: a conffile prompt would fail the install instead of hanging.
  await apt('install', deb2);
  t.equal(installedVersion(), upVersion, `upgraded to ${upVersion}`);
  t.equal(readFileSync('/etc/scratchd/config.json', 'utf8'), localText, 'the local conffile is kept');
  t.ok(existsSync('/etc/scratchd/config.json.dpkg-dist'), "the package's new conffile waits in config.json.dpkg-dist");
  t.equal(sh('/usr/bin/scratchd', { env: cleanEnv }, ['--version']).trim(), `scratchd ${upVersion}`);
  t.equal(sh('/usr/bin/scratchd', { env: cleanEnv }, ['--check', '--config', '/etc/scratchd/config.json']).trim(), '/etc/scratchd/config.json: ok');
  t.equal(sh('id', ['-u', 'scratchd']).trim(), uid, 'same user');
  t.equal(grLines().length, before, 'collected data untouched');
  t.equal(statSync('/var/log/scratchd').mode & 0o7777, 0o750);
});

t.test('upgrade with a config the new version rejects: not restarted, the old process serves, the reason printed', async (t) => {
  const good = readFileSync('/etc/scratchd/config.json', 'utf8');
  const cfg = JSON.parse(good) as Record<string, unknown>;
  // The old process (no systemd here to restart it): the installed daemon on
  // a copy of the config.
  const config = join(work, 'old.json');
  writeFileSync(config, JSON.stringify({ ...cfg, listen: '127.0.0.1:0', stats: { listen: '127.0.0.1:0' }, log: { level: 'info' } }));
  chmodSync(config, 0o644);
  const d = await runInstalled(config);
  try {
    writeFileSync('/etc/scratchd/config.json', JSON.stringify({ ...cfg, colour: 'red' }, null, 2) + '\n');
    const out = await apt('install', '--reinstall', deb2);
    t.equal(installedVersion(), upVersion, 'the upgrade itself completes');
    t.match(out, /scratchd: the new version rejects \/etc\/scratchd\/config\.json:/, 'apt shows that the check failed');
    t.match(out, /unknown key "colour"/, '… with the error');
    t.match(out, /will not start until the config is fixed/, '… and what it means (no systemd here: nothing ran to keep)');
    t.match(out, /then run 'systemctl restart scratchd'/, '… and what to do');
    t.equal((await request(d.port, '/track?old=1', { host: 'www.example.gr' })).status, 200, 'the old process still serves');
    t.equal(d.proc.exitCode, null, 'and runs');
  } finally {
    writeFileSync('/etc/scratchd/config.json', good);
    d.proc.kill('SIGKILL');
  }
  const out = await apt('install', '--reinstall', deb2);
  t.notMatch(out, /rejects/, 'a config it accepts: nothing to say');
});

t.test('remove and purge', async (t) => {
  // A Kafka spool segment left behind: Lines that may not have reached Kafka.
  mkdirSync('/var/lib/scratchd/spool', { recursive: true });
  writeFileSync('/var/lib/scratchd/spool/00000000000000000001.seg', 'x');
  writeFileSync('/var/lib/scratchd/losses.jsonl', '{}\n');
  const removed = await apt('remove', 'scratchd');
  t.match(removed, /\/var\/lib\/scratchd\/spool holds Lines that may not have been delivered to Kafka/, 'remove warns about the spool');
  t.notOk(existsSync('/usr/lib/scratchd'), 'remove: code gone');
  t.notOk(existsSync('/usr/bin/scratchd'), 'remove: binary gone');
  t.ok(existsSync('/etc/scratchd/config.json'), 'remove: conffile stays');

  const purged = await apt('purge', 'scratchd');
  t.match(purged, /keeping \/var\/lib\/scratchd: its Kafka spool holds Lines/, 'purge keeps the spool, and says why');
  t.notOk(isPackageKnown() && installedVersion() !== null, 'purged');
  t.notOk(existsSync('/etc/scratchd'), 'purge: /etc/scratchd gone (with .dpkg-dist)');
  t.ok(grLines().length > 0, 'purge: collected beacon data is kept');
  t.ok(shOk('getent', ['passwd', 'scratchd']), 'purge: the system user stays (Debian practice)');

  // Without data, purge leaves nothing behind.
  rmSync('/var/log/scratchd', { recursive: true, force: true });
  await apt('install', deb1);
  t.ok(existsSync('/var/log/scratchd'), 'reinstall: log dir again');
  mkdirSync('/var/log/scratchd/gr'); // an empty flavor dir, as a daemon that never got a beacon leaves
  rmSync('/var/lib/scratchd/spool', { recursive: true });
  const onlyLosses = await apt('purge', 'scratchd');
  t.match(onlyLosses, /keeping \/var\/lib\/scratchd: it holds the record of lost Lines \(losses\.jsonl\)/, 'only losses.jsonl left: purge says that');
  t.notMatch(onlyLosses, /undelivered|spool/, '… and not that Lines wait');
  rmSync('/var/lib/scratchd', { recursive: true, force: true });
  t.notOk(existsSync('/var/log/scratchd'), 'purge: an empty log dir is removed');
  t.notOk(existsSync('/etc/scratchd'), 'purge: /etc/scratchd gone');
});
