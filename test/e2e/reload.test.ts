// Config reload (SIGHUP): the new config applies without a restart and
// without failing a request; a config with errors changes nothing.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon, testFlavors, type Daemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const today = (tz: string) => dayOf(Date.now(), tz);

/** Write a new config file for the daemon (its own config merged with `over`) and send SIGHUP. */
function reloadWith(d: Daemon, over: Record<string, unknown> | string): void {
  const text = typeof over === 'string' ? over : JSON.stringify({ ...d.config, ...over }, null, 2);
  writeFileSync(join(d.dir, 'config.json'), text);
  d.proc.kill('SIGHUP');
}

/** The nth log line with this message (0-based), once it is there. */
async function nthLog(d: Daemon, msg: string, n: number): Promise<Record<string, unknown>> {
  await d.waitLog(() => d.logs.filter((l) => l.msg === msg).length > n);
  return d.logs.filter((l) => l.msg === msg)[n]!;
}

/** Keep-alive GET loops until `stop()`; every status is kept. */
function keepLoading(port: number, connections: number, host: string): { statuses: number[]; errors: Error[]; stop(): Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const statuses: number[] = [];
  const errors: Error[] = [];
  let running = true;
  const loops = Array.from({ length: connections }, async (_, c) => {
    for (let i = 0; running; i++) {
      try {
        statuses.push((await request(port, `/track?load=${c}-${i}`, { host, agent })).status);
      } catch (err) {
        errors.push(err as Error);
      }
    }
  });
  return {
    statuses, errors,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

/** A POST whose body is sent in two halves; `finish()` sends the rest and resolves with the raw answer. */
function halfPost(port: number, host: string, body: string): Promise<{ finish(): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      const half = body.slice(0, body.length >> 1);
      sock.write(`POST /track HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\n`
        + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${half}`);
      resolve({
        finish: () => new Promise((done) => {
          let answer = '';
          sock.on('data', (c) => {
            answer += c.toString();
            if (answer.includes('\r\n\r\n')) {
              sock.destroy();
              done(answer);
            }
          });
          sock.write(body.slice(half.length));
        }),
      });
    });
    sock.on('error', reject);
  });
}

t.test('a changed flavor table applies at once, and no request in flight fails', async (t) => {
  const d = await startDaemon();
  const load = keepLoading(d.port, 4, 'gr.test');
  await until('load.statuses.length > 50', () => load.statuses.length > 50);
  // A POST whose body is half sent when the reload happens.
  const post = await halfPost(d.port, 'gr.test', 'in=flight&during=reload');

  // New: flavor fr; uk gone; tr now has a schema; gr unchanged.
  const flavors = [
    testFlavors[0],
    { ...testFlavors[1], schema: { type: 'object', required: ['must'] } },
    { name: 'fr', hosts: ['fr.test'], timeZone: 'Europe/Paris' },
  ];
  reloadWith(d, { flavors });
  const reloaded = await nthLog(d, 'config reloaded', 0);
  t.same(reloaded.flavors, ['gr', 'tr', 'fr'], 'logged with the new flavor names');
  t.same(reloaded.changed, ['flavors'], 'and what changed');

  t.match(await post.finish(), /^HTTP\/1\.1 204 /, 'the POST that straddled the reload is answered 204');
  t.equal((await request(d.port, '/track?new=flavor', { host: 'fr.test' })).status, 200, 'the new flavor is served');
  const gone = await request(d.port, '/track?old=flavor', { host: 'uk.test' });
  t.equal(gone.status, 400, 'the removed flavor is refused');
  t.equal(gone.body.toString(), 'unknown_flavor\n');
  t.equal((await request(d.port, '/track?no=must', { host: 'tr.test' })).status, 400, 'the new schema applies');
  t.equal((await request(d.port, '/track?must=1', { host: 'tr.test' })).status, 200);

  // More reloads under load, back and forth.
  for (let i = 1; i <= 4; i++) {
    reloadWith(d, { flavors: i % 2 === 0 ? flavors : testFlavors });
    await nthLog(d, 'config reloaded', i);
  }
  const before = load.statuses.length;
  await until('load.statuses.length > before + 50', () => load.statuses.length > before + 50);
  await load.stop();
  t.same(load.errors.map((e) => e.message), [], 'no request failed at the connection level');
  t.ok(load.statuses.length > 100, `${load.statuses.length} requests during the reloads`);
  t.same([...new Set(load.statuses)], [200], 'every one answered 200');

  t.equal(await d.stop(), 0);
  const log = join(d.dir, 'log');
  t.same(dayLines(log, 'fr', today('Europe/Paris')), ['{"new":"flavor"}'], 'the new flavor\'s Line is in its own file');
  t.ok(dayLines(log, 'gr', today('Europe/Athens')).includes('{"in":"flight","during":"reload"}'), 'the straddling POST was recorded');
  t.same(dayLines(log, 'gr', today('Europe/Athens')).length, load.statuses.length + 1, 'every 200 was written');
  t.same(dayLines(log, 'uk', today('Europe/London')), [], 'nothing for the removed flavor');
});

t.test('a config with errors is refused and the running one stays', async (t) => {
  const d = await startDaemon();
  // Valid JSON, two errors: both are logged, as --check would list them.
  reloadWith(d, { flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Mars/Olympus' }], colour: 'red' });
  const refused = await nthLog(d, 'reload refused: the config has errors; the running config stays', 0);
  t.equal(refused.level, 50, 'logged as an error');
  t.match(refused.errors, [/unknown key "colour"/], 'the schema error is listed');
  t.equal((await request(d.port, '/track?still=uk', { host: 'uk.test' })).status, 200, 'the old flavors still serve');

  // Not JSON at all.
  reloadWith(d, '{"flavors": [');
  const notJson = await nthLog(d, 'reload refused: the config has errors; the running config stays', 1);
  t.match(notJson.errors, [/not JSON/]);
  t.equal((await request(d.port, '/track?still=tr', { host: 'tr.test' })).status, 200);

  // A semantic error our own rules catch (a host in two flavors).
  reloadWith(d, { flavors: [...testFlavors, { name: 'xx', hosts: ['gr.test'], timeZone: 'UTC' }] });
  const dup = await nthLog(d, 'reload refused: the config has errors; the running config stays', 2);
  t.match(dup.errors, [/host "gr.test" already belongs to flavor "gr"/]);

  // Fixed: applies.
  reloadWith(d, { flavors: [...testFlavors, { name: 'xx', hosts: ['xx.test'], timeZone: 'UTC' }] });
  await nthLog(d, 'config reloaded', 0);
  t.equal((await request(d.port, '/track?fixed=1', { host: 'xx.test' })).status, 200, 'the fixed config applies');
  t.equal(d.proc.exitCode, null, 'the daemon never stopped');
  t.equal(await d.stop(), 0);
});

t.test('limits and log level apply; listeners and backends are logged as needing a restart', async (t) => {
  const d = await startDaemon();
  const config = d.config as { backends: { file: { dir: string } } };
  reloadWith(d, {
    limits: { maxParams: 2 },
    trustedProxies: ['127.0.0.1'],
    stats: { listen: '127.0.0.1:1' },
    backends: { ...config.backends, file: { ...config.backends.file, dir: join(d.dir, 'elsewhere') } },
    log: { level: 'error' },
  });
  const restart = await d.waitLog((l) => l.level === 40 && String(l.msg).includes('need a restart'));
  t.same(restart.keys, ['stats.listen', 'backends.file'], 'the changes a reload cannot apply are named');
  t.equal((await request(d.port, '/track?a=1&b=2&c=3', { host: 'gr.test' })).status, 400, 'the new limit applies');
  t.equal((await request(d.port, '/track?a=1&b=2', { host: 'gr.test' })).status, 200);

  // Level error: the next reload's info line is no longer logged, but it applies.
  const infos = d.logs.filter((l) => l.msg === 'config reloaded').length;
  reloadWith(d, { log: { level: 'error' }, flavors: [...testFlavors, { name: 'yy', hosts: ['yy.test'], timeZone: 'UTC' }] });
  const deadline = Date.now() + 10_000;
  let status = 0;
  while (status !== 200 && Date.now() < deadline) {
    status = (await request(d.port, '/track', { host: 'yy.test' })).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(status, 200, 'the second reload applied');
  t.equal(d.logs.filter((l) => l.msg === 'config reloaded').length, infos, 'and logged nothing at info: the level is error');
  t.equal(await d.stop(), 0);
  t.same(dayLines(join(d.dir, 'log'), 'gr', today('Europe/Athens')), ['{"a":"1","b":"2"}'], 'the file backend kept its directory');
});
