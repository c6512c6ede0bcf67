// Privacy and bots by configuration (issue 26), against the built daemon: the
// bytes each flavor's day file holds for masked, hashed and absent IPs,
// visitor ids kept across a restart and changed by the day, GPC and DNT in
// each mode on GET, POST and bulk, bots tagged or dropped, prefetches never
// recorded, every action counted, no raw client IP written where the flavor
// says not to, and /robots.txt.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const HEADLESS = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36';

const flavors = [
  {
    name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens',
    enrich: { ip: 'ip', userAgent: 'ua' },
    privacy: { ip: 'masked', visitorId: 'vid', gpc: 'anonymize', dnt: 'drop', field: 'privacy' },
    bots: { action: 'tag' },
  },
  { name: 'tr', hosts: ['tr.test'], timeZone: 'Europe/Istanbul', enrich: { ip: 'ip' }, privacy: { ip: 'hashed' }, bots: { action: 'drop' } },
  { name: 'uk', hosts: ['uk.test'], timeZone: 'Europe/London', enrich: { ip: 'ip' } },
];

const T0 = Date.parse('2026-12-06T10:00:00Z');

function lines(d: Daemon, flavor: string, day: string): Record<string, string>[] {
  return dayLines(join(d.dir, 'log'), flavor, day).map((l) => JSON.parse(l) as Record<string, string>);
}

async function hit(d: Daemon, host: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  return (await request(d.port, path, { host, headers: { 'user-agent': FIREFOX, ...headers }, ...(body === undefined ? {} : { method: 'POST', body }) })).status;
}

async function metrics(d: Daemon): Promise<string> {
  return (await request(d.statsPort, '/metrics')).body.toString();
}

t.test('Lines, answers and counters under each rule', async (t) => {
  const stateDir = tempDir('scratchd-privacy-state-');
  const d = await startDaemon({ clock: T0, config: { flavors, stateDir } });
  t.teardown(() => d.stop());
  const form = { 'content-type': 'application/x-www-form-urlencoded' };

  t.equal(await hit(d, 'gr.test', '/track?a=1&uid=7&_id=abc'), 200);
  t.equal(await hit(d, 'gr.test', '/track?a=2'), 200);
  t.equal(await hit(d, 'gr.test', '/track?a=3&uid=7', { 'sec-gpc': '1' }), 200, 'GPC: answered as usual');
  t.equal(await hit(d, 'gr.test', '/track?a=4', { dnt: '1' }), 200, 'DNT drop: answered as usual');
  t.equal(await hit(d, 'gr.test', '/track?a=5', { 'user-agent': GOOGLEBOT }), 200);
  t.equal(await hit(d, 'gr.test', '/track?a=6', { 'sec-purpose': 'prefetch' }), 200, 'a prefetch is answered');
  t.equal(await hit(d, 'gr.test', '/track?a=7', { 'x-moz': 'prefetch' }), 200);
  t.equal(await hit(d, 'gr.test', '/track', { ...form, 'sec-gpc': '1' }, 'a=8&_id=x&cid=y'), 204, 'POST with GPC');
  t.equal(await hit(d, 'gr.test', '/track', { 'content-type': 'application/json', dnt: '1' }, '{"requests":["?a=9","?a=10"]}'), 204, 'bulk with DNT');
  t.equal(await hit(d, 'gr.test', '/track', { 'content-type': 'application/json', 'sec-gpc': '1' }, '{"requests":["?a=11&uid=1","?a=12&_ref=r"]}'), 204);
  t.equal(await hit(d, 'tr.test', '/track?b=1'), 200);
  t.equal(await hit(d, 'tr.test', '/track?b=2', { 'user-agent': HEADLESS }), 200, 'a dropped bot is answered');
  t.equal(await hit(d, 'uk.test', '/track?c=1', { 'sec-gpc': '1', dnt: '1' }), 200);

  const day = '2026-12-06';
  await until('gr has its Lines', () => lines(d, 'gr', day).length === 7);
  const gr = lines(d, 'gr', day);
  const vid = gr[0]!.vid!;
  t.match(vid, /^[0-9a-f]{16}$/);
  t.same(gr[0], { a: '1', uid: '7', _id: 'abc', ip: '127.0.0.0', ua: FIREFOX, vid }, 'masked IP, the User-Agent, a visitor id');
  t.same(gr[1], { a: '2', ip: '127.0.0.0', ua: FIREFOX, vid }, 'the same visitor, the same id');
  t.same(gr[2], { a: '3', privacy: 'anonymize' }, 'GPC anonymize: no IP, User-Agent, id or identifiers');
  t.same(gr[3], { a: '5', ip: '127.0.0.0', ua: GOOGLEBOT, vid: gr[3]!.vid, bot: 'true' }, 'a bot tagged');
  t.same(gr[4], { a: '8', privacy: 'anonymize' }, 'POST: the identifiers stripped');
  t.same(gr.slice(5), [{ a: '11', privacy: 'anonymize' }, { a: '12', privacy: 'anonymize' }], 'bulk: each entry stripped');
  await until('tr and uk have their Lines', () => lines(d, 'tr', day).length === 1 && lines(d, 'uk', day).length === 1);
  const [tr] = lines(d, 'tr', day);
  t.match(tr, { b: '1', ip: /^[0-9a-f]{16}$/ }, 'hashed IP');
  t.same(lines(d, 'uk', day), [{ c: '1', ip: '127.0.0.1' }], 'a flavor without rules: as before');

  for (const f of ['gr', 'tr']) {
    const text = readFileSync(join(d.dir, 'log', f, `${f}-${day}.log`), 'utf8');
    t.notMatch(text, '127.0.0.1', `no raw client IP in ${f}'s file`);
  }
  t.notOk(d.logs.some((l) => JSON.stringify(l).includes('"127.0.0.1"')), 'no raw client IP in a log line');

  const m = await metrics(d);
  t.match(m, 'scratchd_privacy_total{flavor="gr",signal="gpc",action="anonymize"} 3', 'one per request, not per bulk entry');
  t.match(m, 'scratchd_privacy_total{flavor="gr",signal="dnt",action="drop"} 2');
  t.match(m, 'scratchd_bots_total{flavor="gr",action="tag"} 1');
  t.match(m, 'scratchd_bots_total{flavor="tr",action="drop"} 1');
  t.match(m, 'scratchd_prefetch_total{flavor="gr"} 2');
  const stats = JSON.parse((await request(d.statsPort, '/stats')).body.toString());
  t.same(stats.privacy.gr, { gpc: { anonymize: 3 }, dnt: { drop: 2 }, bots: { tag: 1 }, prefetch: 2 });

  const robots = await request(d.port, '/robots.txt', { host: 'gr.test' });
  t.equal(robots.status, 200);
  t.equal(robots.body.toString(), 'User-agent: *\nDisallow: /\n');
});

t.test('visitor ids: kept across a restart, new the next day, salts destroyed two days old', async (t) => {
  const stateDir = tempDir('scratchd-privacy-state-');
  const config = { flavors, stateDir };
  const first = await startDaemon({ clock: T0, config });
  t.equal(await hit(first, 'gr.test', '/track?n=1'), 200);
  await until('written', () => lines(first, 'gr', '2026-12-06').length === 1);
  const vid = lines(first, 'gr', '2026-12-06')[0]!.vid;
  t.equal(await first.stop(), 0);
  const salts = join(stateDir, 'salts', 'gr');
  t.same(readdirSync(salts).sort(), ['2026-12-06', '2026-12-07'], 'today\'s and tomorrow\'s salts');
  t.equal(statSync(join(salts, '2026-12-06')).mode & 0o777, 0o600);

  const again = await startDaemon({ clock: T0 + 3_600_000, config });
  t.teardown(() => again.stop());
  t.equal(await hit(again, 'gr.test', '/track?n=2'), 200);
  await until('written after the restart', () => lines(again, 'gr', '2026-12-06').length === 1);
  t.equal(lines(again, 'gr', '2026-12-06')[0]!.vid, vid, 'the same id after a restart the same day');

  await again.setClock(Date.parse('2026-12-07T10:00:00Z'));
  t.equal(await hit(again, 'gr.test', '/track?n=3'), 200);
  await until('written the next day', () => lines(again, 'gr', '2026-12-07').length === 1);
  t.not(lines(again, 'gr', '2026-12-07')[0]!.vid, vid, 'another id the next day');

  await again.setClock(Date.parse('2026-12-08T10:00:00Z'));
  t.equal(await hit(again, 'gr.test', '/track?n=4'), 200);
  await until('the 6th\'s salt destroyed on the 8th', () => !readdirSync(salts).includes('2026-12-06'));
  t.same(readdirSync(salts).sort(), ['2026-12-07', '2026-12-08', '2026-12-09']);
});

// A hit refused for its query or body (400) was neither recorded nor dropped
// by a rule: it is counted under rejected only, not as a prefetch, a GPC or
// DNT action or a bot.
t.test('a refused hit counts as refused, not as a prefetch, privacy or bot action', async (t) => {
  const d = await startDaemon({ clock: T0, config: { flavors, stateDir: tempDir('scratchd-privacy-state-') } });
  t.teardown(() => d.stop());
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  t.equal(await hit(d, 'gr.test', '/track?a=%zz', { 'sec-purpose': 'prefetch' }), 400);
  t.equal(await hit(d, 'gr.test', '/track?a=%zz', { 'sec-gpc': '1' }), 400);
  t.equal(await hit(d, 'gr.test', '/track?a=%zz', { dnt: '1' }), 400);
  t.equal(await hit(d, 'gr.test', '/track?a=%zz', { 'user-agent': GOOGLEBOT }), 400);
  t.equal(await hit(d, 'tr.test', '/track?a=%zz', { 'user-agent': HEADLESS }), 400);
  t.equal(await hit(d, 'gr.test', '/track', { ...form, dnt: '1' }, 'a=%zz'), 400, 'POST');
  t.equal(await hit(d, 'gr.test', '/track', { 'content-type': 'application/json', 'sec-gpc': '1' }, '{"requests":["?a=1",7]}'), 400, 'bulk');
  t.equal(await hit(d, 'gr.test', '/track?a=1', { dnt: '1' }), 200, 'and one that is dropped');
  const m = await metrics(d);
  t.match(m, 'scratchd_privacy_total{flavor="gr",signal="dnt",action="drop"} 1', 'the dropped hit only');
  t.notMatch(m, /scratchd_privacy_total\{flavor="gr",signal="gpc"/);
  t.notMatch(m, /scratchd_bots_total\{flavor="(gr|tr)"/);
  t.notMatch(m, /scratchd_prefetch_total\{flavor="gr"\} [1-9]/);
  const stats = JSON.parse((await request(d.statsPort, '/stats')).body.toString());
  t.same(stats.privacy.gr, { gpc: {}, dnt: { drop: 1 }, bots: {}, prefetch: 0 });
  t.equal(stats.rejected.bad_encoding, 6);
  t.equal(stats.rejected.bulk_entry, 1);
});

// A reload (SIGHUP) that gives a flavor privacy and bot rules applies from the
// next hit, and one that takes them away again too.
t.test('a reload that changes privacy and bots applies at once', async (t) => {
  const plain = flavors;
  const d = await startDaemon({ clock: T0, config: { flavors: plain, stateDir: tempDir('scratchd-privacy-state-') } });
  t.teardown(() => d.stop());
  const reloadWith = async (fl: unknown[], n: number): Promise<void> => {
    writeFileSync(join(d.dir, 'config.json'), JSON.stringify({ ...d.config, flavors: fl }, null, 2));
    d.proc.kill('SIGHUP');
    await d.waitLog(() => d.logs.filter((l) => l.msg === 'config reloaded').length > n);
  };
  t.equal(await hit(d, 'uk.test', '/track?n=1'), 200);
  const strict = { name: 'uk', hosts: ['uk.test'], timeZone: 'Europe/London', enrich: { ip: 'ip' }, privacy: { ip: 'masked', dnt: 'drop' }, bots: { action: 'drop' } };
  await reloadWith(plain.map((f) => (f.name === 'uk' ? strict : f)), 0);
  t.equal(await hit(d, 'uk.test', '/track?n=2'), 200);
  t.equal(await hit(d, 'uk.test', '/track?n=3', { dnt: '1' }), 200);
  t.equal(await hit(d, 'uk.test', '/track?n=4', { 'user-agent': GOOGLEBOT }), 200);
  t.equal(await hit(d, 'uk.test', '/track', { 'content-type': 'application/x-www-form-urlencoded', dnt: '1' }, 'n=5'), 204);
  await reloadWith(plain, 1);
  t.equal(await hit(d, 'uk.test', '/track?n=6', { dnt: '1', 'user-agent': GOOGLEBOT }), 200);
  await until('uk has its Lines', () => lines(d, 'uk', '2026-12-06').length === 3);
  t.same(lines(d, 'uk', '2026-12-06'), [{ n: '1', ip: '127.0.0.1' }, { n: '2', ip: '127.0.0.0' }, { n: '6', ip: '127.0.0.1' }]);
  t.match(await metrics(d), 'scratchd_bots_total{flavor="uk",action="drop"} 1');
});

// The paths the first test does not take: multipart bodies and HEAD.
t.test('multipart and HEAD: GPC anonymizes, DNT drops', async (t) => {
  const d = await startDaemon({ clock: T0, config: { flavors, stateDir: tempDir('scratchd-privacy-state-') } });
  t.teardown(() => d.stop());
  const multipart = (fields: Record<string, string>): string =>
    Object.entries(fields).map(([k, v]) => `--XyZ\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') + '--XyZ--\r\n';
  const type = { 'content-type': 'multipart/form-data; boundary=XyZ' };
  t.equal(await hit(d, 'gr.test', '/track', { ...type, 'sec-gpc': '1' }, multipart({ m: '1', uid: '7', _id: 'abc' })), 204);
  t.equal(await hit(d, 'gr.test', '/track', { ...type, dnt: '1' }, multipart({ m: '2', uid: '7' })), 204);
  t.equal((await request(d.port, '/track?h=1&uid=7', { host: 'gr.test', method: 'HEAD', headers: { 'user-agent': FIREFOX, 'sec-gpc': '1' } })).status, 200);
  t.equal((await request(d.port, '/track?h=2', { host: 'gr.test', method: 'HEAD', headers: { 'user-agent': FIREFOX, dnt: '1' } })).status, 200);
  await until('gr has its Lines', () => lines(d, 'gr', '2026-12-06').length === 2);
  t.same(lines(d, 'gr', '2026-12-06'), [{ m: '1', privacy: 'anonymize' }, { h: '1', privacy: 'anonymize' }]);
});
