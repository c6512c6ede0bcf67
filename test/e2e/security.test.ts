// What a hostile client or a careless config must never achieve: the stats
// listener reached through the public port, a file written outside the log
// directory, a forged line in a log file or in the daemon's own log, a limit
// switched off into unbounded memory. And the daemon needs no privileges.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { mainJs, startDaemon, tempDir } from '../helpers/daemon.js';
import { dayLines, drainedCounters } from '../helpers/files.js';
import { raw, request } from '../helpers/http.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const nobody = { uid: 65534, gid: 65534 };
const flavor = { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' };
const athens = () => dayOf(Date.now(), 'Europe/Athens');

/** Deep merge of plain objects (b wins). */
function merge(a: Record<string, unknown>, b: object): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    out[k] = old !== null && typeof old === 'object' && !Array.isArray(old) && v !== null && typeof v === 'object' && !Array.isArray(v)
      ? merge(old as Record<string, unknown>, v)
      : v;
  }
  return out;
}

/** `scratchd --config FILE --check` on this config. */
function check(config: unknown): { code: number | null; stderr: string; file: string } {
  const file = join(tempDir(), 'config.json');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  const r = spawnSync(...withoutTapHooks(process.execPath, [mainJs, '--config', file, '--check']), { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stderr: r.stderr, file };
}

t.test('the stats listener is never reachable through the public port', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const sp = d.statsPort;
  t.not(sp, d.port, `stats on its own port ${sp}, public on ${d.port}`);
  t.equal((await request(sp, '/stats')).status, 200, 'the stats listener itself answers');
  for (const path of ['/metrics', '/stats', '/metrics/', '//metrics', '/stats?x=1', '/%6Detrics', '/track/../metrics', '/./stats', '/METRICS']) {
    for (const host of [undefined, 'gr.test', `127.0.0.1:${sp}`, 'localhost:9100']) {
      for (const method of ['GET', 'HEAD', 'POST']) {
        const r = await request(d.port, path, { host, method });
        t.equal(r.status, 404, `${method} ${path} Host ${host}`);
      }
    }
  }
  // The public /health is the plain one, not the stats listener's JSON.
  t.equal((await request(d.port, '/health')).body.toString(), 'ok\n');
  // An absolute-form target naming the stats listener: not even parsed by uWS.
  t.match(await raw(d.port, `GET http://127.0.0.1:${sp}/metrics HTTP/1.1\r\nHost: 127.0.0.1:${sp}\r\n\r\n`), /^HTTP\/1\.1 505 /);
  // And the default stats address is loopback only.
  const schema = JSON.parse(readFileSync(new URL('../../config.schema.json', import.meta.url), 'utf8'));
  t.equal(schema.properties.stats.properties.listen.default, '127.0.0.1:8097');
});

t.test('flavor names that could leave the log directory are config errors', async (t) => {
  const bad = ['..', '.', '/', 'a/../b', '../etc', 'a/b', 'GR', 'Gr', '', ' gr', 'gr\n', 'gr\u0000', '\\..', 'x'.repeat(65)];
  // One --check lists every error: one flavor per bad name, each with its own host.
  const r = check({ flavors: bad.map((name, i) => ({ ...flavor, name, hosts: [`h${i}.test`] })) });
  t.equal(r.code, 1);
  bad.forEach((name, i) => t.match(r.stderr, `${r.file}: /flavors/${i}/name: `, `name ${JSON.stringify(name)} rejected with its path`));
  const good = ['gr', 'gr.m', 'a-b_c.1', '...'];
  t.equal(check({ flavors: good.map((name, i) => ({ ...flavor, name, hosts: [`h${i}.test`] })) }).code, 0, `${good.join(' ')} are fine`);
});

t.test('the Host header only selects a configured flavor: paths in it go nowhere', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  for (const host of ['..', '../../etc', 'gr.test/../../etc', 'gr.test%2F..', '/', '.', 'gr.test\\..']) {
    const r = await request(d.port, '/track?a=1', { host });
    t.equal(r.status, 400, `Host ${host}`);
    t.equal(r.body.toString(), 'unknown_flavor\n');
  }
  t.equal(await d.stop(), 0);
  t.same(readdirSync(d.dir).sort(), ['config.json'], 'nothing written anywhere, not even the log dir');
});

t.test('log injection: CR, LF, U+2028, quotes and backslashes in keys and values stay inside one escaped JSON line', async (t) => {
  const d = await startDaemon({
    config: { flavors: [{ ...flavor, enrich: { userAgent: 'ua', referer: 'ref' } }] },
  });
  t.teardown(() => d.stop());
  const cases: [string, Record<string, unknown>][] = [
    ['a=1%0A%7B%22forged%22%3A%22line%22%7D', { a: '1\n{"forged":"line"}' }],
    ['%22k%22%0D%0A%22=%22v%22%0D', { '"k"\r\n"': '"v"\r' }],
    ['ls=%E2%80%A8x%E2%80%A9&%E2%80%A8=k', { ls: '\u2028x\u2029', '\u2028': 'k' }],
    ['b%5C%22=%5C%5C%22%7D%0A', { 'b\\"': '\\\\"}\n' }],
    ['n%5Ba%0Ab%5D=1', { n: { 'a\nb': '1' } }],
    ['c=%00%01%1F%7F', { c: '\u0000\u0001\u001f\u007f' }],
  ];
  // Node sends header strings as latin1: this is "é €" in UTF-8 on the wire, as browsers send it.
  const utf8OnTheWire = Buffer.from('é €', 'utf8').toString('latin1');
  const headers = { 'user-agent': `Mozilla "x" \\ ${utf8OnTheWire} z`, referer: 'https://e.test/?q="\\' };
  for (const [q] of cases) t.equal((await request(d.port, `/track?${q}`, { host: 'gr.test', headers })).status, 200, q);
  const post = await request(d.port, '/track', {
    host: 'gr.test', method: 'POST', headers: { ...headers, 'content-type': 'text/plain' },
    // A Buffer: with a string body Node writes the head in the body's encoding (UTF-8), not latin1.
    body: Buffer.from('p=%0A%0D%E2%80%A8%22'),
  });
  t.equal(post.status, 204);
  t.equal(await d.stop(), 0);
  const lines = dayLines(join(d.dir, 'log'), 'gr', athens());
  t.equal(lines.length, cases.length + 1, 'one line per request, no more');
  const ua = 'Mozilla "x" \\ é € z';
  cases.forEach(([q, values], i) => {
    t.same(JSON.parse(lines[i]!), { ...values, ua, ref: headers.referer }, q);
    t.notMatch(lines[i]!, /[\r\u0000]/, `${q}: no raw CR or NUL in the line`);
  });
  t.same(JSON.parse(lines[cases.length]!), { p: '\n\r\u2028"', ua, ref: headers.referer });
  t.same(d.logs.filter((l) => 'raw' in l), [], 'the daemon\'s own log is JSON lines only');
});

t.test('limits cannot be switched off: 0, negative, huge, non-integer, null, strings are config errors', async (t) => {
  const limits: [string, (v: unknown) => object][] = [
    ['/limits/maxQueryBytes', (v) => ({ limits: { maxQueryBytes: v } })],
    ['/limits/maxBodyBytes', (v) => ({ limits: { maxBodyBytes: v } })],
    ['/limits/maxParams', (v) => ({ limits: { maxParams: v } })],
    ['/limits/maxDepth', (v) => ({ limits: { maxDepth: v } })],
    ['/backends/file/queueCapacity', (v) => ({ backends: { file: { queueCapacity: v } } })],
    ['/backends/kafka/queueCapacity', (v) => ({ backends: { kafka: { queueCapacity: v } } })],
  ];
  const all = (v: unknown) => limits.reduce((o, [, make]) => merge(o, make(v)), { flavors: [flavor] } as Record<string, unknown>);
  for (const v of [0, -1, 1e12, 1.5, null, '8192', true]) {
    const r = check(all(v));
    t.equal(r.code, 1, `${JSON.stringify(v)} rejected`);
    for (const [path] of limits) t.match(r.stderr, `${r.file}: ${path}: must be`, `${path} = ${JSON.stringify(v)}: path and reason`);
  }
  // JSON numbers too large for a double parse as Infinity: still rejected.
  const inf = check(JSON.stringify(all(424242)).replaceAll('424242', '1e999'));
  t.equal(inf.code, 1, '1e999 rejected');
  for (const [path] of limits) t.match(inf.stderr, `${inf.file}: ${path}: must be`);
  // The highest allowed values are bounded: the sum of what they let one request and the queues hold.
  const schema = JSON.parse(readFileSync(new URL('../../config.schema.json', import.meta.url), 'utf8'));
  const max = (o: { properties: Record<string, { maximum?: number }> }, k: string) => o.properties[k]!.maximum;
  t.ok(max(schema.properties.limits, 'maxQueryBytes')! <= 65536);
  t.ok(max(schema.properties.limits, 'maxBodyBytes')! <= 1048576);
  t.ok(max(schema.properties.limits, 'maxParams')! <= 4096, 'no more than Rack allows');
  t.ok(max(schema.properties.limits, 'maxDepth')! <= 100, 'no more than Rack allows');
});

t.test('unprivileged: runs as nobody with a writable log dir, no warnings, files 0640', async (t) => {
  const d = await startDaemon({ user: nobody });
  t.teardown(() => d.stop());
  t.equal((await request(d.port, '/track?who=nobody', { host: 'gr.test' })).status, 200);
  t.equal((await request(d.statsPort, '/health')).status, 200, 'stats listener up');
  d.proc.kill('SIGHUP');
  await d.waitLog((l) => l.msg === 'reopening files');
  t.equal((await request(d.port, '/track?who=again', { host: 'gr.test' })).status, 200);
  t.equal(await d.stop(), 0);
  const log = join(d.dir, 'log');
  t.same(dayLines(log, 'gr', athens()), ['{"who":"nobody"}', '{"who":"again"}']);
  const st = statSync(join(log, 'gr', `gr-${athens()}.log`));
  t.same([st.uid, st.gid, st.mode & 0o777], [nobody.uid, nobody.gid, 0o640]);
  t.same(d.logs.filter((l) => Number(l.level) >= 40), [], 'no warning or error logged');
  t.same(drainedCounters(d.logs, 'file'), { persisted: 2, failed: 0, dropped: 0, retried: 0 });
});
