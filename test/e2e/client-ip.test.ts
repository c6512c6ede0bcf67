// The ip enrichment over IPv6 and dual-stack listeners (#30 hostile 4): uWS
// reports such peers fully expanded, and trustedProxies must still match them.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { until } from '../helpers/wait.js';

const flavors = [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { ip: 'ip' } }];

/** GET /track on `host` (an address literal), with an X-Forwarded-For header. */
function hit(host: string, port: number, page: string, forwardedFor: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host, port, path: `/track?page=${page}`, agent: false, headers: { host: 'gr.test', 'x-forwarded-for': forwardedFor },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/** page → ip written, from the gr day file. */
function ips(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of dayLines(join(dir, 'log'), 'gr', '2026-07-01')) {
    const v = JSON.parse(l) as { page: string; ip: string };
    out[v.page] = v.ip;
  }
  return out;
}

const clock = Date.parse('2026-07-01T09:30:00.000Z');

t.test('an IPv6 peer matches trustedProxies ["::1"] and is written as ::1', async (t) => {
  const d = await startDaemon({ clock, config: { listen: '[::1]:0', trustedProxies: ['::1'], flavors } });
  t.equal(await hit('::1', d.port, 'forwarded', '10.0.0.1, 2001:DB8:0:0:0:0:0:7'), 200);
  t.equal(await d.stop(), 0);
  t.same(ips(d.dir), { forwarded: '2001:db8::7' }, "the proxy's entry, in short form");
});

t.test('trustedProxies spelled long still matches; an untrusted IPv6 peer is written short', async (t) => {
  const d = await startDaemon({ clock, config: { listen: '[::1]:0', trustedProxies: ['0:0:0:0:0:0:0:1'], flavors } });
  t.equal(await hit('::1', d.port, 'trusted', '203.0.113.7'), 200);
  t.equal(await d.stop(), 0);
  const e = await startDaemon({ clock, config: { listen: '[::1]:0', trustedProxies: ['127.0.0.1'], flavors } });
  t.equal(await hit('::1', e.port, 'untrusted', '203.0.113.7'), 200);
  t.equal(await e.stop(), 0);
  t.same(ips(d.dir), { trusted: '203.0.113.7' });
  t.same(ips(e.dir), { untrusted: '::1' }, 'the peer, not the forged header, not 0000:…:0001');
});

t.test('an IPv4 peer of a dual-stack listener is its IPv4 address', async (t) => {
  const d = await startDaemon({ clock, config: { listen: '[::]:0', trustedProxies: ['127.0.0.1'], flavors } });
  t.equal(await hit('127.0.0.1', d.port, 'mapped-trusted', '::ffff:198.51.100.9'), 200);
  t.equal(await d.stop(), 0);
  const e = await startDaemon({ clock, config: { listen: '[::]:0', trustedProxies: ['::1'], flavors } });
  t.equal(await hit('127.0.0.1', e.port, 'mapped-untrusted', '198.51.100.9'), 200);
  t.equal(await e.stop(), 0);
  t.same(ips(d.dir), { 'mapped-trusted': '198.51.100.9' }, 'matched as 127.0.0.1; the forwarded mapped address as IPv4');
  t.same(ips(e.dir), { 'mapped-untrusted': '127.0.0.1' });
});

t.test('a trustedProxies entry that is no address is refused at load', async (t) => {
  const d = startDaemon({ config: { trustedProxies: ['::1', 'proxy.local'], flavors } });
  await t.rejects(d, /trustedProxies\/1: "proxy\.local" is not an IP address/);
});

// privacy.ip "masked" over the same paths: IPv6 and IPv4-mapped peers of a
// dual-stack listener, forwarded addresses from a trusted proxy in every
// spelling, and forged ones from an untrusted peer; no raw address in the day.
t.test('privacy.ip masked: every peer and forwarded spelling masked, none raw in the day', async (t) => {
  const masked = [{ ...flavors[0], privacy: { ip: 'masked' } }];
  const d = await startDaemon({ clock, config: { listen: '[::]:0', trustedProxies: ['::1'], flavors: masked } });
  t.teardown(() => d.stop());
  t.equal(await hit('::1', d.port, 'v6', '2001:DB8:1:2:3:4:5:6'), 200);
  t.equal(await hit('::1', d.port, 'mapped', '::ffff:192.0.2.137'), 200);
  t.equal(await hit('::1', d.port, 'mappedhex', '::FFFF:C000:0289'), 200);
  t.equal(await hit('::1', d.port, 'withport', '192.0.2.137:5555'), 200);
  t.equal(await hit('::1', d.port, 'bracketed', '[2001:db8::77]:443'), 200);
  t.equal(await hit('::1', d.port, 'zone', 'fe80::1234%eth0'), 200);
  t.equal(await hit('::1', d.port, 'junk', 'unknown'), 200);
  t.equal(await hit('127.0.0.1', d.port, 'v4peer', '198.51.100.9'), 200);
  t.equal(await hit('::1', d.port, 'v6peer', ''), 200);
  await until('nine Lines', () => Object.keys(ips(d.dir)).length === 9);
  t.same(ips(d.dir), {
    v6: '2001:db8:1::', mapped: '192.0.0.0', mappedhex: '192.0.0.0', withport: '', bracketed: '', zone: 'fe80::',
    junk: '', v4peer: '127.0.0.0', v6peer: '::',
  });
  const text = readFileSync(join(d.dir, 'log', 'gr', 'gr-2026-07-01.log'), 'utf8');
  for (const raw of ['192.0.2.137', 'c000:289', '2001:db8:1:2', '2001:db8::77', '1234', '198.51.100.9', '127.0.0.1']) t.notMatch(text, raw, `no ${raw}`);
});
