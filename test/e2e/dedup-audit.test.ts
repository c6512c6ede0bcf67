// Duplicate hits (issue 29) audited against the built daemon with two
// serving threads: two User-Agents whose UTF-16 units differ only in their
// top bit, at two places, are two clients (a hash step taking two units at
// once made them one key, whatever the seed); and one page view sent in
// many parameter orders and lengths, over many connections (so over both
// threads, each with its own remembered entries), is one Line.
import { join } from 'node:path';
import t from 'tap';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const T0 = Date.parse('2026-12-06T10:00:00Z');
const DAY = '2026-12-06';
const flavors = [
  { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { userAgent: 'ua' }, dedup: { key: ['ip', 'userAgent'] } },
  { name: 'tr', hosts: ['tr.test'], timeZone: 'Europe/Istanbul', enrich: { ip: 'ip' }, privacy: { gpc: 'anonymize' }, dedup: { key: ['pv_id', 'r'] } },
];

function lines(d: Daemon, flavor: string): Record<string, string>[] {
  return dayLines(join(d.dir, 'log'), flavor, DAY).map((l) => JSON.parse(l) as Record<string, string>);
}

/** A User-Agent header as its UTF-8 bytes on the wire (node writes header strings as latin1). */
const wire = (ua: string): string => Buffer.from(ua, 'utf8').toString('latin1');

async function metric(d: Daemon, name: string, flavor: string): Promise<number> {
  const text = (await request(d.statsPort, '/metrics')).body.toString();
  const m = new RegExp(`^${name}\\{flavor="${flavor}"\\} (\\d+)$`, 'm').exec(text);
  return m === null ? -1 : Number(m[1]);
}

t.test('two User-Agents apart in two units\' top bits: two clients; each repeat a duplicate', async (t) => {
  const d = await startDaemon({ clock: T0, config: { threads: 2, flavors } });
  t.teardown(() => d.stop());
  // "abc耤" and "a耢cd" from an even unit on: b and U+8062, d and U+8064
  // differ only in bit 15. (Each ends in ASCII: a header's trailing
  // non-ASCII bytes are lost before the handler reads it.)
  const uas = ['Mozilla/5.0 (X11) abc\u8064 Safari', 'Mozilla/5.0 (X11) a\u8062cd Safari'];
  for (const ua of [...uas, ...uas]) {
    t.equal((await request(d.port, '/track?a=1', { host: 'gr.test', headers: { 'user-agent': wire(ua) } })).status, 200);
  }
  await until('two gr Lines', () => lines(d, 'gr').length >= 2);
  await until('two duplicates counted', async () => (await metric(d, 'scratchd_duplicates_total', 'gr')) === 2);
  t.same(lines(d, 'gr').map((l) => l.ua).sort(), [...uas].sort(), 'both clients recorded, once each');
});

t.test('one page view in many orders and lengths, over both threads: one Line', async (t) => {
  const d = await startDaemon({ clock: T0, config: { threads: 2, flavors } });
  t.teardown(() => d.stop());
  const views = ['AbC123', 'ZzZ999', 'pv3'];
  let sent = 0;
  for (let i = 0; i < 24; i++) {
    const pv = views[i % views.length]!;
    const params = [`pv_id=${pv}`, `r=${pv.length}42`, 'idsite=1', `action_name=${'x'.repeat((i * 37) % 400)}`, `_id=${i}`];
    // rotate the order, and now and then a query large enough for a buffer of its own
    const q = [...params.slice(i % params.length), ...params.slice(0, i % params.length)];
    if (i % 7 === 3) q.push(`pad=${'p'.repeat(7000)}`);
    t.equal((await request(d.port, `/track?${q.join('&')}`, { host: 'tr.test', headers: { 'user-agent': 't', 'sec-gpc': '1' } })).status, 200);
    sent++;
  }
  await until('every hit judged', async () => (await metric(d, 'scratchd_duplicates_total', 'tr')) === sent - views.length);
  await until('three tr Lines', () => lines(d, 'tr').length >= views.length);
  const got = lines(d, 'tr');
  t.same(got.map((l) => l.pv_id).sort(), [...views].sort(), 'one Line per page view');
  t.ok(got.every((l) => l._id === undefined && l.idsite === '1'), 'recorded as the privacy rule strips them');
});
