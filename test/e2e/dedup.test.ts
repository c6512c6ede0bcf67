// Duplicate hits (issue 29), against the built daemon with a fake clock: the
// same Matomo hit twice within the window is one Line, after the window two,
// other pv_ids are their own hits, bulk bodies are deduplicated entry by
// entry, a flavor without dedup records every hit, the bound evicts, and
// /metrics and /stats count exactly.
import { join } from 'node:path';
import t from 'tap';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const T0 = Date.parse('2026-12-06T10:00:00Z');
const DAY = '2026-12-06';
const flavors = [
  { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { ip: 'ip' }, dedup: { key: ['pv_id', 'r'], windowMs: 10_000 } },
  { name: 'tr', hosts: ['tr.test'], timeZone: 'Europe/Istanbul', dedup: { key: ['ip', 'userAgent', 'body'], windowMs: 60_000, maxKeys: 2 } },
  { name: 'uk', hosts: ['uk.test'], timeZone: 'Europe/London' },
];
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JSON_BODY = { 'content-type': 'application/json' };

function lines(d: Daemon, flavor: string): Record<string, string>[] {
  return dayLines(join(d.dir, 'log'), flavor, DAY).map((l) => JSON.parse(l) as Record<string, string>);
}

async function hit(d: Daemon, host: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<number> {
  const post = body === undefined ? {} : { method: 'POST', body };
  return (await request(d.port, path, { host, headers: { 'user-agent': 'test', ...headers }, ...post })).status;
}

/** Lines are written in order: once `marker` is in the file, every hit before it is settled. */
async function settled(d: Daemon, flavor: string, host: string, marker: string): Promise<Record<string, string>[]> {
  t.equal(await hit(d, host, `/track?marker=${marker}&pv_id=${marker}`), 200);
  await until(`${flavor} marker ${marker}`, () => lines(d, flavor).some((l) => l.marker === marker));
  return lines(d, flavor).filter((l) => l.marker === undefined);
}

async function metric(d: Daemon, name: string, flavor: string): Promise<number> {
  const text = (await request(d.statsPort, '/metrics')).body.toString();
  const m = new RegExp(`^${name}\\{flavor="${flavor}"\\} (\\d+)$`, 'm').exec(text);
  return m === null ? -1 : Number(m[1]);
}

t.test('the same hit within the window is one Line, after it two; bulk entry by entry; counted', async (t) => {
  const d = await startDaemon({ clock: T0, config: { flavors } });
  t.teardown(() => d.stop());
  const matomo = '/track?idsite=1&rec=1&action_name=Home&pv_id=AbC123&r=482913&_id=1a2b';

  t.equal(await hit(d, 'gr.test', matomo), 200);
  t.equal(await hit(d, 'gr.test', matomo), 200, 'a duplicate is answered as usual');
  t.equal(await hit(d, 'gr.test', matomo.replace('_id=1a2b', '_id=ffff')), 200, 'other fields do not matter: the key is pv_id and r');
  t.equal(await hit(d, 'gr.test', matomo.replace('pv_id=AbC123', 'pv_id=ZzZ999')), 200, 'another page view');
  t.equal(await hit(d, 'gr.test', '/track', 'idsite=1&pv_id=AbC123&r=482913&action_name=Home', FORM), 204, 'the same hit by POST');
  let got = await settled(d, 'gr', 'gr.test', 'm1');
  t.same(got.map((l) => l.pv_id), ['AbC123', 'ZzZ999'], 'within the window: one Line per page view');

  // The fake clock moves with real time from T0: well past the first hit plus its 10 s.
  await d.setClock(T0 + 120_000);
  t.equal(await hit(d, 'gr.test', matomo), 200);
  got = await settled(d, 'gr', 'gr.test', 'm2');
  t.same(got.map((l) => l.pv_id), ['AbC123', 'ZzZ999', 'AbC123'], 'after the window: recorded again');

  t.equal(await hit(d, 'gr.test', '/track', '{"requests":["?pv_id=b1&r=1","?pv_id=b2&r=2"]}', JSON_BODY), 204);
  t.equal(await hit(d, 'gr.test', '/track', '{"requests":["?pv_id=b2&r=2","?pv_id=b3&r=3","?pv_id=b1&r=1"]}', JSON_BODY), 204,
    'a bulk retry with one new entry');
  got = await settled(d, 'gr', 'gr.test', 'm3');
  t.same(got.map((l) => l.pv_id).slice(3), ['b1', 'b2', 'b3'], 'bulk entries deduplicated entry by entry');

  // Duplicates: 2 GET + 1 POST, then the 2 repeated bulk entries.
  t.equal(await metric(d, 'scratchd_duplicates_total', 'gr'), 5, 'scratchd_duplicates_total exact');
  t.equal(await metric(d, 'scratchd_dedup_evictions_total', 'gr'), 0);
  const stats = JSON.parse((await request(d.statsPort, '/stats')).body.toString()) as { dedup: Record<string, unknown>; requests: { GET: Record<string, number> } };
  t.same(stats.dedup.gr, { duplicates: 5, evictions: 0 }, '/stats counts the same');
  t.equal(stats.requests.GET['200'], 8, 'every GET answered and counted as answered');
  t.equal(stats.dedup.uk, undefined, 'a flavor without dedup has no counters');

  // No dedup: two identical pixels on one page are two hits.
  t.equal(await hit(d, 'uk.test', '/track?pv_id=x&r=1'), 200);
  t.equal(await hit(d, 'uk.test', '/track?pv_id=x&r=1'), 200);
  t.equal((await settled(d, 'uk', 'uk.test', 'm4')).length, 2, 'dedup is off by default');
});

t.test('a key of ip, userAgent and body; the bound evicts the oldest and counts it', async (t) => {
  const d = await startDaemon({ clock: T0, config: { flavors } });
  t.teardown(() => d.stop());
  const post = (body: string, ua = 'test') => hit(d, 'tr.test', '/track', body, { ...FORM, 'user-agent': ua });

  t.equal(await post('a=1'), 204);
  t.equal(await post('a=1'), 204, 'the same body: a duplicate');
  t.equal(await post('a=1', 'other'), 204, 'another User-Agent: another key');
  let got = lines(d, 'tr');
  await until('two tr Lines', () => (got = lines(d, 'tr')).length >= 2);
  t.equal(await metric(d, 'scratchd_duplicates_total', 'tr'), 1);
  // The bound is 2 keys: a third evicts the oldest (a=1 with "test").
  t.equal(await post('a=2'), 204);
  t.equal(await metric(d, 'scratchd_dedup_evictions_total', 'tr'), 1, 'one eviction');
  t.equal(await post('a=1'), 204, 'its key was evicted: recorded again');
  t.equal(await metric(d, 'scratchd_dedup_evictions_total', 'tr'), 2, 'and it evicted the next oldest');
  t.equal(await post('a=2'), 204, 'still held: a duplicate');
  await until('four tr Lines', () => (got = lines(d, 'tr')).length >= 4);
  t.same(got.map((l) => l.a), ['1', '1', '2', '1']);
  t.equal(await metric(d, 'scratchd_duplicates_total', 'tr'), 2, 'duplicates exact');
});
