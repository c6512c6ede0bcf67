// Every status and header the public listener promises, against the real daemon.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { dayFile } from '../../src/file/backend.js';
import { dayOf } from '../../src/day.js';
import { startDaemon } from '../helpers/daemon.js';
import { raw, request } from '../helpers/http.js';

const GIF = Buffer.from('47494638396101000100800100000000ffffff21f90401000001002c00000000010001000002024c01003b', 'hex');
const NO_CACHE = 'no-store, no-cache, must-revalidate, max-age=0';

t.test('public listener', async (t) => {
  const d = await startDaemon({
    config: {
      limits: { maxQueryBytes: 1024, maxBodyBytes: 256 },
      flavors: [
        { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' },
        {
          name: 'shop', hosts: ['shop.test'], timeZone: 'Europe/London',
          schema: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]+$' } } },
        },
      ],
    },
  });
  t.teardown(() => d.stop());

  await t.test('GET /track answers the GIF with no-cache headers', async (t) => {
    const r = await request(d.port, '/track?foo=bar', { host: 'gr.test' });
    t.equal(r.status, 200);
    t.equal(r.headers['content-type'], 'image/gif');
    t.equal(r.headers['cache-control'], NO_CACHE);
    t.equal(r.headers.expires, '0');
    t.equal(r.headers['content-length'], '43');
    t.same(r.body, GIF);
  });

  await t.test('Host is matched without port and case', async (t) => {
    t.equal((await request(d.port, '/track?h=1', { host: 'GR.Test:8080' })).status, 200);
  });

  await t.test('HEAD /track: same headers, no body', async (t) => {
    const r = await request(d.port, '/track?head=1', { host: 'gr.test', method: 'HEAD' });
    t.equal(r.status, 200);
    t.equal(r.headers['content-type'], 'image/gif');
    t.equal(r.headers['content-length'], '43');
    t.equal(r.body.length, 0);
  });

  await t.test('POST /track with a form or text body answers 204', async (t) => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain;charset=UTF-8']) {
      const r = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: 'post=1&t=' + type.length, headers: { 'content-type': type } });
      t.equal(r.status, 204, type);
      t.equal(r.headers['cache-control'], NO_CACHE);
      t.equal(r.headers['content-length'], undefined, '204 carries no Content-Length');
      t.equal(r.body.length, 0);
    }
  });

  await t.test('POST with another content type: 415', async (t) => {
    const r = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    t.equal(r.status, 415);
    t.equal(r.body.toString(), 'bad_content_type\n');
  });

  await t.test('POST body over the limit: 413, by Content-Length or by counting', async (t) => {
    const body = 'a=' + 'x'.repeat(300);
    const r = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    t.equal(r.status, 413);
    const chunked = await raw(d.port, 'POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n'
      + `12c\r\n${'b'.repeat(300)}\r\n0\r\n\r\n`);
    t.match(chunked, /^HTTP\/1\.1 413 /);
  });

  await t.test('unknown or missing Host: 400 unknown_flavor', async (t) => {
    const r = await request(d.port, '/track?a=1', { host: 'evil.test' });
    t.equal(r.status, 400);
    t.equal(r.body.toString(), 'unknown_flavor\n');
    const noHost = await raw(d.port, 'GET /track?a=1 HTTP/1.1\r\n\r\n');
    t.match(noHost, /^HTTP\/1\.1 400 /);
  });

  await t.test('what Rack rejects: 400 with the reason', async (t) => {
    const cases: [string, string][] = [
      ['/track?a=%zz', 'bad_encoding'],
      ['/track?a=%', 'bad_encoding'],
      ['/track?a=%FF', 'invalid_utf8'],
      ['/track?a=1&a[b]=2', 'param_type'],
    ];
    for (const [path, reason] of cases) {
      const r = await request(d.port, path, { host: 'gr.test' });
      t.equal(r.status, 400, path);
      t.equal(r.body.toString(), `${reason}\n`, path);
    }
  });

  await t.test('query over maxQueryBytes: 414', async (t) => {
    const r = await request(d.port, '/track?a=' + 'x'.repeat(1100), { host: 'gr.test' });
    t.equal(r.status, 414);
    t.equal(r.body.toString(), 'too_long\n');
    // Bytes, not characters: 400 × "α" is 400 characters but 800 bytes when %-decoded... and 2400 raw.
    const wide = await request(d.port, '/track?a=' + encodeURIComponent('α'.repeat(200)), { host: 'gr.test' });
    t.equal(wide.status, 414);
    // Past uWS's default 4 KiB head but within the limit main loads it with
    // (maxQueryBytes + 8 KiB): scratchd's own answer, not uWS's 431.
    const longer = await request(d.port, '/track?a=' + 'x'.repeat(6000), { host: 'gr.test' });
    t.equal(longer.status, 414, 'uWS was loaded with the configured head limit');
  });

  await t.test('per-flavor JSON Schema: 400 schema', async (t) => {
    t.equal((await request(d.port, '/track?id=42', { host: 'shop.test' })).status, 200);
    const r = await request(d.port, '/track?id=abc', { host: 'shop.test' });
    t.equal(r.status, 400);
    t.equal(r.body.toString(), 'schema\n');
  });

  await t.test('/health answers ok, other paths 404', async (t) => {
    const h = await request(d.port, '/health');
    t.equal(h.status, 200);
    t.equal(h.body.toString(), 'ok\n');
    for (const [path, method] of [['/', 'GET'], ['/metrics', 'GET'], ['/stats', 'GET'], ['/track', 'PUT'], ['/trackx?a=1', 'GET']]) {
      const r = await request(d.port, path!, { host: 'gr.test', method });
      t.equal(r.status, 404, `${method} ${path}`);
    }
  });

  await t.test('HTTP/1.0 gets a clear 505 from uWS, and closes', async (t) => {
    const r = await raw(d.port, 'GET /track?a=1 HTTP/1.0\r\nHost: gr.test\r\n\r\n');
    t.match(r, /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
  });

  await t.test('only accepted requests reach the file, each exactly once', async (t) => {
    await d.stop();
    const lines = readFileSync(dayFile(`${d.dir}/log`, 'gr', dayOf(Date.now(), 'Europe/Athens')), 'utf8');
    t.equal(lines, [
      '{"foo":"bar"}', '{"h":"1"}', '{"head":"1"}',
      '{"post":"1","t":"33"}', '{"post":"1","t":"24"}',
    ].join('\n') + '\n');
    const shop = readFileSync(dayFile(`${d.dir}/log`, 'shop', dayOf(Date.now(), 'Europe/London')), 'utf8');
    t.equal(shop, '{"id":"42"}\n');
  });
});

// uWS decodes header values as UTF-8 for uWS.js, after trimming every byte
// below 33 at both ends, read as a signed char: that takes bytes >= 0x80 too,
// so non-ASCII text at either end of a value is lost (issue 30 hostile 7; no
// uWS.js call gives the raw bytes). Inside a value it is kept whole. The
// decisions (docs/decisions.md) state it; this pins it.
t.test('User-Agent and Referer beyond ASCII: kept inside the value, lost at its ends', async (t) => {
  const d = await startDaemon({
    config: { flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { userAgent: 'ua', referer: 'ref' } }] },
  });
  const cases: [ua: string, referer: string, want: { ua: string; ref: string }][] = [
    ['é', 'https://gr.test/é', { ua: '', ref: 'https://gr.test/' }],
    ['Bot é 1.0', 'https://gr.test/?q=é&x=1', { ua: 'Bot é 1.0', ref: 'https://gr.test/?q=é&x=1' }],
    ['ü Bot', 'https://gr.test/ü/x', { ua: 'Bot', ref: 'https://gr.test/ü/x' }],
    ['Bot 日本', 'https://gr.test/%E6%97%A5', { ua: 'Bot', ref: 'https://gr.test/%E6%97%A5' }],
  ];
  for (const [i, [ua, ref]] of cases.entries()) {
    const head = Buffer.from(`GET /track?n=${i} HTTP/1.1\r\nHost: gr.test\r\nUser-Agent: ${ua}\r\nReferer: ${ref}\r\nConnection: close\r\n\r\n`, 'utf8');
    t.match(await raw(d.port, head), /^HTTP\/1\.1 200 /);
  }
  t.equal(await d.stop(), 0);
  const lines = readFileSync(dayFile(`${d.dir}/log`, 'gr', dayOf(Date.now(), 'Europe/Athens')), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines, cases.map(([, , want], i) => ({ n: String(i), ...want })));
});
