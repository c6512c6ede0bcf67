// The command line: --help, --version, --check, and exit 1 with one line on stderr.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { mainJs, root, startDaemon, tempDir } from '../helpers/daemon.js';
import { holdPort } from '../helpers/wait.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

function run(...args: string[]) {
  const r = spawnSync(...withoutTapHooks(process.execPath, [mainJs, ...args]), { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function configFile(config: unknown): string {
  const file = join(tempDir(), 'config.json');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return file;
}

const flavor = { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' };
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

t.test('--version and --help', async (t) => {
  t.same(run('--version'), { code: 0, stdout: `scratchd ${version}\n`, stderr: '' });
  const help = run('--help');
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: scratchd --config FILE \[--check\]/);
});

t.test('missing --config or unknown option: exit 1, one line', async (t) => {
  t.same(run(), { code: 1, stdout: '', stderr: 'scratchd: --config FILE is required (try --help)\n' });
  const r = run('--bogus');
  t.equal(r.code, 1);
  t.match(r.stderr, /^scratchd: Unknown option '--bogus'.*\n$/);
});

t.test('--check accepts the repository config.json', async (t) => {
  const r = run('--config', join(root, 'config.json'), '--check');
  t.same(r, { code: 0, stdout: `${join(root, 'config.json')}: ok\n`, stderr: '' });
});

t.test('--check lists every error with its path and reason', async (t) => {
  const file = configFile({
    listen: 'nowhere',
    colour: 'blue',
    limits: { maxParams: 0 },
    flavors: [
      { ...flavor, name: '../etc' },
      { ...flavor, name: 'tr', timeZone: 'Mars/Olympus' },
    ],
    backends: { file: { queueCapacity: -1, extra: true } },
  });
  const r = run('--config', file, '--check');
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.same(r.stderr.trimEnd().split('\n').sort(), [
    `${file}: /: unknown key "colour"`,
    `${file}: /backends/file: unknown key "extra"`,
    `${file}: /backends/file/queueCapacity: must be >= 1`,
    `${file}: /flavors/0/name: must match pattern "^[a-z0-9._-]+$"`,
    `${file}: /limits/maxParams: must be >= 1`,
    `${file}: /listen: must match pattern "^(\\[[0-9a-fA-F:.]+\\]|[^:\\[\\]]+):[0-9]{1,5}$"`,
    `scratchd: ${file}: 6 error(s)`,
  ].sort());
});

t.test('semantic errors: port range, unknown time zone, a host in two flavors, duplicate names', async (t) => {
  const file = configFile({ listen: '127.0.0.1:70000', flavors: [flavor, { ...flavor, timeZone: 'Mars/Olympus' }] });
  const r = run('--config', file, '--check');
  t.equal(r.code, 1);
  t.same(r.stderr.trimEnd().split('\n'), [
    `${file}: /listen: port must be at most 65535`,
    `${file}: /flavors/1/name: duplicate flavor name "gr"`,
    `${file}: /flavors/1/hosts/0: host "gr.test" already belongs to flavor "gr"`,
    `${file}: /flavors/1/timeZone: unknown time zone "Mars/Olympus"`,
    `scratchd: ${file}: 4 error(s)`,
  ]);
});

t.test('Kafka settings: librdkafka judges its own, and the flush must end before the drain deadline', async (t) => {
  const file = configFile({
    shutdown: { drainTimeoutMs: 5000 },
    flavors: [flavor],
    backends: { kafka: { enabled: true, flushTimeoutMs: 5000, rdkafka: { 'no.such.property': 1 } } },
  });
  const r = run('--config', file, '--check');
  t.equal(r.code, 1);
  t.same(r.stderr.trimEnd().split('\n'), [
    `${file}: /backends/kafka/flushTimeoutMs: must be below /shutdown/drainTimeoutMs (5000)`,
    `scratchd: ${file}: 1 error(s)`,
  ]);
  const rdkafka = run('--config', configFile({ flavors: [flavor], backends: { kafka: { enabled: true, rdkafka: { 'no.such.property': 1 } } } }), '--check');
  t.equal(rdkafka.code, 1);
  t.match(rdkafka.stderr, /: \/backends\/kafka\/rdkafka: .*No such configuration property: "no\.such\.property"/);
});

t.test('starting with a bad config: exit 1, one line on stderr', async (t) => {
  const r = run('--config', configFile('{"flavors": ['));
  t.equal(r.code, 1);
  t.match(r.stderr, /^scratchd: .*config\.json: not JSON: .*\n$/);
  const missing = run('--config', '/nonexistent/scratchd.json');
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^scratchd: \/nonexistent\/scratchd\.json: ENOENT: no such file or directory.*\n$/);
});

t.test('a port that cannot be bound: exit 1, one line on stderr', async (t) => {
  const { port, close } = await holdPort();
  const r = run('--config', configFile({ listen: `127.0.0.1:${port}`, stats: { listen: '127.0.0.1:0' }, flavors: [flavor], backends: { file: { dir: tempDir() } } }));
  await close();
  t.equal(r.code, 1);
  t.equal(r.stderr, `scratchd: cannot listen on 127.0.0.1:${port}\n`);
});

t.test('two instances cannot share a port (uWS would allow it with SO_REUSEPORT)', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const r = run('--config', configFile({ listen: `127.0.0.1:${d.port}`, stats: { listen: '127.0.0.1:0' }, flavors: [flavor], backends: { file: { dir: tempDir() } } }));
  t.equal(r.code, 1);
  t.equal(r.stderr, `scratchd: cannot listen on 127.0.0.1:${d.port}\n`);
});
