// What real trackers send (issue 13) against the built daemon: POST Values
// are Rails' params (query merged with body), multipart bodies, Matomo bulk
// bodies, and CORS for cross-origin pages. Bytes in the day files, statuses,
// headers and counters are what is asserted.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { Agent } from 'node:http';
import { request as send } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { parseValues, rackLimits } from '../../src/query/index.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

/** Every Line of a flavor so far, in file order. */
function lines(d: Daemon, flavor: string): string[] {
  const dir = join(d.dir, 'log', flavor);
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
  } catch {
    return [];
  }
  return files.flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== ''));
}

const consumed = new Map<string, number>();

/**
 * Send a sentinel GET and wait until it is written (everything accepted before
 * it is written too): the Lines since the previous sentinel.
 */
// One kept-alive connection for every request here: its Lines reach the
// file in the order they were answered (one serving thread, one relay).
// Across connections the order is the relay's arrival order, so settle()'s
// sentinel would not reliably come after a hit sent on another connection.
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
t.teardown(() => agent.destroy());
const request = (port: number, path: string, opts: Parameters<typeof send>[2] = {}): ReturnType<typeof send> => send(port, path, { agent, ...opts });

async function settle(d: Daemon, flavor = 'gr', host = 'gr.test'): Promise<string[]> {
  const mark = `settle${Math.random().toString(36).slice(2)}`;
  const r = await request(d.port, `/track?${mark}=1`, { host });
  if (r.status !== 200) throw new Error(`sentinel got ${r.status}`);
  await until('lines(d, flavor).some((l) => l.includes(mark))', () => lines(d, flavor).some((l) => l.includes(mark)));
  const all = lines(d, flavor);
  const end = all.findIndex((l) => l.includes(mark));
  const from = consumed.get(flavor) ?? 0;
  consumed.set(flavor, end + 1);
  return all.slice(from, end);
}

const form = { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' };

function multipart(parts: { name: string; value: string; filename?: string; type?: string }[], boundary = '----scratchdBoundary7MA4YWxk'): { body: Buffer; type: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type === undefined ? '' : `Content-Type: ${p.type}\r\n`}\r\n`));
    chunks.push(Buffer.from(p.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

t.test('trackers', async (t) => {
  const d = await startDaemon({
    config: {
      limits: { maxBodyBytes: 2048, maxBulkRequests: 3 },
      flavors: [
        { name: 'gr', hosts: ['gr.test', 'www.gr.test'], timeZone: 'Europe/Athens' },
        { name: 'shop', hosts: ['shop.test'], timeZone: 'Europe/London', bulk: false, cors: { origins: ['https://pages.example', 'http://127.0.0.2:8000'] } },
      ],
    },
  });
  t.teardown(() => d.stop());

  await t.test('POST Values are the query merged with the body (Rails params)', async (t) => {
    const cases: [string, string, string][] = [
      // Matomo's default sendBeacon: the whole hit in the URL, an empty body.
      ['/track?idsite=1&rec=1&action_name=%CE%9A%CE%B1%CE%BB%CE%B7%CE%BC%CE%AD%CF%81%CE%B1', '', '{"idsite":"1","rec":"1","action_name":"Καλημέρα"}'],
      ['/track', 'a=1&b=2', '{"a":"1","b":"2"}'],
      // A body key replaces the query's value where the query had it; new keys follow in body order.
      ['/track?a=1&b=2&c=3', 'd=4&b=x', '{"a":"1","b":"x","c":"3","d":"4"}'],
      // Shallow: a nested body value replaces the query's whole hash.
      ['/track?u[x]=1&u[y]=2&k=q', 'u[z]=3', '{"u":{"z":"3"},"k":"q"}'],
      ['/track?list[]=1&list[]=2', 'list[]=3&e=%F0%9F%98%80', '{"list":["3"],"e":"😀"}'],
    ];
    for (const [path, body] of cases) {
      const r = await request(d.port, path, { host: 'gr.test', method: 'POST', body, headers: form });
      t.equal(r.status, 204, `${path} ${body}`);
    }
    t.same(await settle(d), cases.map((c) => c[2]));
  });

  await t.test('POST: each part is refused like a GET query would be; nothing recorded', async (t) => {
    const bad = await request(d.port, '/track?a=%ZZ', { host: 'gr.test', method: 'POST', body: 'b=1', headers: form });
    t.equal(bad.status, 400);
    t.equal(bad.body.toString(), 'bad_encoding\n');
    const badBody = await request(d.port, '/track?a=1', { host: 'gr.test', method: 'POST', body: 'a[=1&a[b]=2&a=%', headers: form });
    t.equal(badBody.status, 400);
    // maxParams (1000) holds for each part and for the two together.
    const half = (k: string) => Array.from({ length: 600 }, (_, i) => `${k}${i}`).join('&');
    t.equal((await request(d.port, `/track?${half('q')}`, { host: 'gr.test', method: 'POST', body: '', headers: form })).status, 204, '600 in the query');
    const body450 = Array.from({ length: 450 }, () => 'x').join('&');
    t.equal((await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: body450, headers: form })).status, 204, '450 in the body');
    const both = await request(d.port, `/track?${half('q')}`, { host: 'gr.test', method: 'POST', body: body450, headers: form });
    t.equal(both.status, 400, '600 in the query and 450 in the body');
    t.equal(both.body.toString(), 'too_many_params\n');
    t.same((await settle(d)).map((l) => Object.keys(JSON.parse(l)).length), [600, 1]);
    t.same(await settle(d), []);
  });

  await t.test('multipart/form-data: text fields are params, merged over the query', async (t) => {
    const m = multipart([
      { name: 'idsite', value: '1' },
      { name: 'action_name', value: 'Ελληνικά 😀 & = %' },
      { name: 'ec_items[0][]', value: 'SKU1' },
      { name: 'ec_items[0][]', value: 'Name' },
      { name: 'q', value: 'body' },
    ]);
    const r = await request(d.port, '/track?q=query&rec=1', { host: 'gr.test', method: 'POST', body: m.body, headers: { 'content-type': m.type } });
    t.equal(r.status, 204);
    t.same(await settle(d), ['{"q":"body","rec":"1","idsite":"1","action_name":"Ελληνικά 😀 & = %","ec_items":{"0":["SKU1","Name"]}}']);
  });

  await t.test('multipart: a file part is 400 file_part, a broken body 400, an oversized one 413; nothing recorded', async (t) => {
    const withFile = multipart([{ name: 'a', value: '1' }, { name: 'f', value: 'GIF89a', filename: 'x.gif', type: 'image/gif' }]);
    const r = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: withFile.body, headers: { 'content-type': withFile.type } });
    t.equal(r.status, 400);
    t.equal(r.body.toString(), 'file_part\n');
    const cut = multipart([{ name: 'a', value: '1' }]);
    const broken = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: cut.body.subarray(0, cut.body.length - 10), headers: { 'content-type': cut.type } });
    t.equal(broken.status, 400);
    t.equal(broken.body.toString(), 'bad_multipart\n');
    const big = multipart([{ name: 'a', value: 'x'.repeat(3000) }]);
    const tooBig = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: big.body, headers: { 'content-type': big.type, 'transfer-encoding': 'chunked' } });
    t.equal(tooBig.status, 413);
    t.same(await settle(d), []);
  });

  await t.test("multipart as Rack reads it: nameless parts, charsets, no Content-Disposition, no boundary", async (t) => {
    const b = '----scratchdBoundary7MA4YWxk';
    const part = (head: string, value: Buffer | string) => Buffer.concat([Buffer.from(`--${b}\r\n${head}\r\n`), Buffer.from(value), Buffer.from('\r\n')]);
    const post = (body: Buffer | string, type = `multipart/form-data; boundary=${b}`) =>
      request(d.port, '/track', { host: 'gr.test', method: 'POST', body, headers: { 'content-type': type } });
    const end = `--${b}--\r\n`;
    const ok = await post(Buffer.concat([
      part('Content-Disposition: form-data\r\n', 'no name'),
      part('Content-Disposition: form-data; name=""\r\n', 'empty name'),
      part('Content-Disposition: form-data; name="utf8"\r\nContent-Type: text/plain; charset=utf-8\r\n', 'é'),
      part('Content-Disposition: form-data; name="latin1"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n', Buffer.from([0xe9])),
      part('Content-Type: application/json\r\n', '{"no":"disposition"}'),
      Buffer.from(end),
    ]));
    t.equal(ok.status, 204);
    const utf16 = await post(Buffer.concat([
      part('Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain; charset=utf-16le\r\n', Buffer.from('hé', 'utf16le')), Buffer.from(end),
    ]));
    t.equal(utf16.status, 400, 'a UTF-16 part: Rack raises on it');
    t.equal(utf16.body.toString(), 'bad_multipart\n');
    const noBoundary = await post('x=1', 'multipart/form-data');
    t.equal(noBoundary.status, 204, 'no boundary: Rack reads the body as a form');
    t.same(await settle(d), [
      '{"text/plain":["no name","empty name"],"utf8":"é","latin1":"é","application/json":["{\\"no\\":\\"disposition\\"}"]}',
      '{"x":"1"}',
    ]);
  });

  await t.test('Matomo bulk: one Line per entry, in order, all or nothing', async (t) => {
    const body = JSON.stringify({ requests: ['?idsite=1&c_n=banner&c_p=%CE%91', 'idsite=1&c_n=footer', '?e_c=%F0%9F%98%80'] });
    const r = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body, headers: form });
    t.equal(r.status, 204);
    const json = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: JSON.stringify({ requests: ['?j=1'] }), headers: { 'content-type': 'application/json' } });
    t.equal(json.status, 204, 'an application/json bulk body too');
    t.same(await settle(d), ['{"idsite":"1","c_n":"banner","c_p":"Α"}', '{"idsite":"1","c_n":"footer"}', '{"e_c":"😀"}', '{"j":"1"}']);

    const bad = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: JSON.stringify({ requests: ['?ok=1', '?a=%ZZ'] }), headers: form });
    t.equal(bad.status, 400);
    t.equal(bad.body.toString(), 'bad_encoding at requests[1]\n');
    const notString = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: JSON.stringify({ requests: ['?ok=1', 5] }), headers: form });
    t.equal(notString.status, 400);
    t.equal(notString.body.toString(), 'bulk_entry at requests[1]\n');
    const tooMany = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: JSON.stringify({ requests: ['?a=1', '?a=2', '?a=3', '?a=4'] }), headers: form });
    t.equal(tooMany.status, 413);
    t.equal(tooMany.body.toString(), 'bulk_too_large\n');
    const otherJson = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    t.equal(otherJson.status, 415, 'JSON that is not a bulk body');
    t.same(await settle(d), [], 'nothing recorded from a refused bulk body');
  });

  await t.test('bulk: false reads the body as a form, as Rack would', async (t) => {
    const body = '{"requests":["?a=1"]}';
    const r = await request(d.port, '/track', { host: 'shop.test', method: 'POST', body, headers: form });
    t.equal(r.status, 204);
    t.same(await settle(d, 'shop', 'shop.test'), [String(parseValues(body, rackLimits))]);
  });

  await t.test('CORS: an allowed Origin reads every /track answer, credentials included', async (t) => {
    const origin = { origin: 'https://www.gr.test' };
    const get = await request(d.port, '/track?c=1', { host: 'gr.test', headers: origin });
    t.equal(get.status, 200);
    t.equal(get.headers['access-control-allow-origin'], 'https://www.gr.test');
    t.equal(get.headers['access-control-allow-credentials'], 'true');
    t.equal(get.headers.vary, 'Origin');
    t.equal(get.headers['content-type'], 'image/gif');
    const post = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: 'c=2', headers: { ...form, origin: 'http://gr.test' } });
    t.equal(post.status, 204);
    t.equal(post.headers['access-control-allow-origin'], 'http://gr.test');
    t.equal(post.headers['access-control-allow-credentials'], 'true');
    const refused = await request(d.port, '/track?c=%ZZ', { host: 'gr.test', headers: origin });
    t.equal(refused.status, 400);
    t.equal(refused.headers['access-control-allow-origin'], 'https://www.gr.test', 'a refusal is readable too');
    const configured = await request(d.port, '/track?c=3', { host: 'shop.test', headers: { origin: 'http://127.0.0.2:8000' } });
    t.equal(configured.headers['access-control-allow-origin'], 'http://127.0.0.2:8000');
    const none = await request(d.port, '/track?c=4', { host: 'gr.test' });
    t.equal(none.headers['access-control-allow-origin'], undefined);
    t.equal(none.headers.vary, undefined);
  });

  await t.test('CORS: preflight, a denied Origin, and their counters', async (t) => {
    const pre = await request(d.port, '/track', {
      host: 'gr.test', method: 'OPTIONS',
      headers: { origin: 'https://gr.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    t.equal(pre.status, 204);
    t.equal(pre.headers['access-control-allow-origin'], 'https://gr.test');
    t.equal(pre.headers['access-control-allow-credentials'], 'true');
    t.equal(pre.headers['access-control-allow-methods'], 'GET, HEAD, POST');
    t.equal(pre.headers['access-control-allow-headers'], 'Content-Type');
    t.equal(pre.headers['access-control-max-age'], '86400');
    t.equal(pre.headers.vary, 'Origin');
    t.equal(pre.body.length, 0);

    // The shop flavor lists its origins: its own hosts are not among them.
    const denied = await request(d.port, '/track?c=5', { host: 'shop.test', headers: { origin: 'https://shop.test' } });
    t.equal(denied.status, 200, 'the hit is still recorded: the browser already sent it');
    t.equal(denied.headers['access-control-allow-origin'], undefined);
    const deniedPre = await request(d.port, '/track', { host: 'gr.test', method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    t.equal(deniedPre.status, 204);
    t.equal(deniedPre.headers['access-control-allow-origin'], undefined);
    t.equal(deniedPre.headers['access-control-allow-methods'], undefined);
    t.same(await settle(d, 'shop', 'shop.test'), ['{"c":"3"}', '{"c":"5"}']);

    const port = d.statsPort!;
    const cors = async () => (JSON.parse((await request(port, '/stats')).body.toString()) as { cors: { preflight: number; denied: number } }).cors;
    t.same(await cors(), { preflight: 2, denied: 2 });

    // Origins are matched whole: one that extends or shortens an allowed
    // origin, or names another port, is denied, and each is counted.
    const near: [method: string, origin: string][] = [
      ['GET', 'https://pages.example.evil.net'], ['POST', 'https://pages.exampl'], ['OPTIONS', 'https://pages.example.'],
      ['GET', 'http://127.0.0.2:8001'], ['OPTIONS', 'http://127.0.0.2:800'], ['GET', 'http://127.0.0.2'],
    ];
    let deniedSoFar = 2;
    for (const [method, origin] of near) {
      const r = await request(d.port, '/track?c=near', { host: 'shop.test', method, headers: { ...(method === 'POST' ? form : {}), origin } });
      t.equal(r.headers['access-control-allow-origin'], undefined, `${method} from ${origin}: no CORS`);
      t.equal((await cors()).denied, ++deniedSoFar, `${method} from ${origin}: counted as denied`);
    }
    // Preflights and denials now differ, so each metric must export its own counter.
    t.same(await cors(), { preflight: 4, denied: 8 });
    const m = (await request(port, '/metrics')).body.toString();
    t.match(m, /^scratchd_cors_preflight_total 4$/m);
    t.match(m, /^scratchd_cors_denied_total 8$/m);
  });
});

t.test('the new keys are validated up front', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { mainJs, tempDir } = await import('../helpers/daemon.js');
  const file = join(tempDir(), 'config.json');
  writeFileSync(file, JSON.stringify({
    limits: { maxBulkRequests: 10001 },
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', bulk: 'yes', cors: { origins: ['www.example.gr', 'https://ok.example'], credentials: true } }],
  }));
  const r = spawnSync(...withoutTapHooks(process.execPath, [mainJs, '--config', file, '--check']), { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1);
  t.same(r.stderr.trimEnd().split('\n').sort(), [
    `${file}: /flavors/0/bulk: must be boolean`,
    `${file}: /flavors/0/cors: unknown key "credentials"`,
    `${file}: /flavors/0/cors/origins/0: must match pattern "^[a-z][a-z0-9+.-]*://[^/?#\\s]+$"`,
    `${file}: /limits/maxBulkRequests: must be <= 10000`,
    `scratchd: ${file}: 4 error(s)`,
  ].sort());
});
