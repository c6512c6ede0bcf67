// Per-flavor enrichment: server-side facts added to Values, X-Forwarded-For believed only from trusted proxies.
import { join } from 'node:path';
import t from 'tap';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { stats } from '../helpers/watch.js';

t.test('enrichment adds arrival time, client ip, user agent and referer', async (t) => {
  const d = await startDaemon({
    clock: Date.parse('2026-07-01T09:30:00.000Z'),
    config: {
      trustedProxies: ['127.0.0.1'],
      flavors: [
        { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { time: 'ts', ip: 'ip', userAgent: 'ua', referer: 'ref' } },
        { name: 'uk', hosts: ['uk.test'], timeZone: 'Europe/London' },
      ],
    },
  });
  const headers = { 'user-agent': 'Mozilla/5.0 "quoted"', referer: 'https://gr.test/p?a=1', 'x-forwarded-for': '10.9.9.9, 203.0.113.7' };
  // From a trusted proxy: the last X-Forwarded-For entry is the client.
  await request(d.port, '/track?page=1&ip=spoofed', { host: 'gr.test', headers });
  // From an untrusted peer: its forged header is ignored.
  await request(d.port, '/track?page=2', { host: 'gr.test', headers, localAddress: '127.0.0.2' });
  // POST bodies are enriched the same way.
  await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: 'page=3', headers: { 'content-type': 'text/plain' } });
  // Flavors without enrich keep the legacy output.
  await request(d.port, '/track?page=4', { host: 'uk.test', headers });
  t.equal(await d.stop(), 0);
  const lines = dayLines(join(d.dir, 'log'), 'gr', '2026-07-01').map((l) => JSON.parse(l) as Record<string, string>);
  t.equal(lines.length, 3);
  t.match(lines[0]!.ts, /^2026-07-01T12:3\d:\d\d\.\d{3}\+03:00$/, 'arrival time, in Athens');
  t.same(lines[0], { page: '1', ip: '203.0.113.7', ts: lines[0]!.ts, ua: 'Mozilla/5.0 "quoted"', ref: 'https://gr.test/p?a=1' },
    'the server-side ip wins over a query field of the same name, keeping its place');
  t.equal(lines[1]!.ip, '127.0.0.2');
  t.same(Object.keys(lines[2]!), ['page', 'ts', 'ip', 'ua', 'ref']);
  t.equal(lines[2]!.ip, '127.0.0.1', 'no X-Forwarded-For: the peer');
  t.same(dayLines(join(d.dir, 'log'), 'uk', '2026-07-01'), ['{"page":"4"}']);
});

t.test('a bulk body with enrichment may write at most limits.maxBulkBytes of Lines', async (t) => {
  const d = await startDaemon({
    clock: Date.parse('2026-07-01T09:30:00.000Z'),
    config: { flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { userAgent: 'ua' } }] },
  });
  // Each entry's Line is {"a":"1","ua":"<15,500 bytes>"}: 15,517 bytes.
  const headers = { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'M'.repeat(15_500) };
  const bulk = (n: number) => JSON.stringify({ requests: Array.from({ length: n }, () => '?a=1') });
  const before = await stats(d);
  // The audit's request: 100 entries, under 16 KB sent, would write 1.55 MB.
  const hundred = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: bulk(100), headers });
  t.equal(hundred.status, 413);
  t.equal(hundred.body.toString(), 'bulk_too_large at requests[16]\n', 'the first entry past the default 256 KiB');
  const seventeen = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: bulk(17), headers });
  t.equal(seventeen.status, 413);
  const sixteen = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: bulk(16), headers });
  t.equal(sixteen.status, 204, '16 × 15,517 bytes fit in 262,144');
  t.equal((await stats(d)).rejected.bulk_too_large! - (before.rejected.bulk_too_large ?? 0), 2);
  t.equal(await d.stop(), 0);
  const lines = dayLines(join(d.dir, 'log'), 'gr', '2026-07-01');
  t.equal(lines.length, 16, 'all or nothing: the refused bodies wrote no Line');
  t.equal(Buffer.byteLength(lines.join('')), 16 * 15_517);
});
