// The browser tier (issue 13): Debian's chromium, driven over the DevTools
// protocol by puppeteer-core, loads pages from a second loopback origin
// (http://127.0.0.2:<port>) that run Matomo's own tracker
// (../shared/clients/matomo.js) in every mode it has, plus plain <img>
// pixels and sendBeacon with a string, URLSearchParams and FormData, all
// pointed at scratchd on http://127.0.0.1:<port>.
//
// Every request the browser sent to /track is captured through the DevTools
// protocol (Network.requestWillBeSent, the body from postDataEntries). What
// scratchd must have recorded is computed from those captured requests with
// the engine's Rack semantics (the query merged with the body as Rails'
// params; bulk bodies one hit per entry; multipart fields as Rack makes
// them), and a few Lines are checked by hand. The day file must hold exactly
// those Lines: one per logical hit, no duplicate (Matomo resends a hit as an
// image when its XHR fails CORS), and the console holds no CORS error.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import busboy from 'busboy';
import puppeteer, { type Browser, type CDPSession } from 'puppeteer-core';
import t from 'tap';
import { root, startDaemon, type Daemon } from '../helpers/daemon.js';
import { until } from '../helpers/wait.js';
import { parseValues, type QueryLimits } from '../../src/query/index.js';
import { paramsFromFields } from '../../src/query/index.js';
import { formValues, queryMerged } from '../../src/http/post.js';
import { bulkEntries } from '../../src/http/bulk.js';

const CHROMIUM = '/usr/bin/chromium';
// scripts/test-all.sh passes a copy under /tmp (seen inside the chroot wherever the
// checkout is); run alone, the tracker beside the checkout.
const MATOMO_JS = process.env.SCRATCHD_MATOMO_JS ?? join(root, '../shared/clients/matomo.js');
/** The daemon's default limits (config.schema.json). */
const limits: QueryLimits = { maxParams: 1000, maxDepth: 32 };

/** Installed by scripts/test-all.sh before the suite: a test that cannot run fails, it never installs. */
function ensureChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/test-all.sh installs chromium before the suite`);
}

/** One request the browser sent to /track, as captured over CDP. */
interface Hit {
  id: string;
  mode: string;
  method: string;
  url: URL;
  contentType: string;
  body: Buffer;
  done: boolean;
}

/** The Lines Rails would have recorded for one captured request (the engine's Rack semantics). */
async function expectedLines(hit: Hit): Promise<string[]> {
  const query = hit.url.search.slice(1);
  if (hit.method === 'GET' || hit.method === 'HEAD') return [String(asBuffer(parseValues(query, limits)))];
  const entries = bulkEntries(hit.body);
  if (entries !== null) return entries.map((e) => String(asBuffer(parseValues(String(e).replace(/^\?/, ''), limits))));
  if (hit.contentType.toLowerCase().startsWith('multipart/form-data')) {
    const fields = await multipartFields(hit.contentType, hit.body);
    const post = paramsFromFields(fields, limits);
    if ('reason' in post) throw new Error(`multipart hit refused by the engine: ${post.reason}`);
    return [String(asBuffer(queryMerged(query, post, limits, undefined)))];
  }
  return [String(asBuffer(formValues(query, hit.body, limits, undefined)))];
}

function asBuffer(r: Buffer | string | { reason: string }): Buffer {
  if (Buffer.isBuffer(r)) return r;
  throw new Error(`the engine refuses a hit the browser sent: ${typeof r === 'string' ? r : r.reason}`);
}

function multipartFields(contentType: string, body: Buffer): Promise<[string, string][]> {
  return new Promise((resolve, reject) => {
    const fields: [string, string][] = [];
    const bb = busboy({ headers: { 'content-type': contentType }, defCharset: 'utf8', defParamCharset: 'utf8' });
    bb.on('field', (name, value) => fields.push([name, value]));
    bb.on('file', () => reject(new Error('a file part in a browser hit')));
    bb.on('error', reject);
    bb.on('close', () => resolve(fields));
    bb.end(body);
  });
}

function dayLines(d: Daemon): string[] {
  const dir = join(d.dir, 'log', 'site');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.log')).sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== ''));
}

/** The pages: Matomo in each mode, and hand-written hits. `T` is the tracker URL. */
function pages(T: string): Record<string, string> {
  const matomo = (setup: string, body = '') => `<!doctype html><meta charset="utf-8"><title>scratchd</title>
<body>${body}<script>
var _paq = window._paq = window._paq || [];
_paq.push(['setTrackerUrl', ${JSON.stringify(T)}]);
_paq.push(['setSiteId', '1']);
${setup}
_paq.push([function () { window.__done = true; }]);
</script><script src="/matomo.js"></script></body>`;
  return {
    'matomo-default': matomo(`_paq.push(['setDocumentTitle', 'Καλημέρα κόσμε 😀']); _paq.push(['trackPageView']);`),
    'matomo-post': matomo(`_paq.push(['setRequestMethod', 'POST']); _paq.push(['setDocumentTitle', 'Μέθοδος POST']); _paq.push(['trackPageView']);`),
    'matomo-xhr': matomo(`_paq.push(['disableAlwaysUseSendBeacon']); _paq.push(['setRequestMethod', 'POST']);
      _paq.push(['setDocumentTitle', 'XHR ✓ διαπιστευτήρια']); _paq.push(['trackPageView']);`),
    'matomo-image': matomo(`_paq.push(['disableAlwaysUseSendBeacon']); _paq.push(['setDocumentTitle', 'εικόνα']); _paq.push(['trackPageView']);`),
    'matomo-long': matomo(`_paq.push(['setCustomUrl', 'http://127.0.0.2/long?' + 'λ'.repeat(600)]);
      _paq.push(['setDocumentTitle', 'μακρύ ' + '😀'.repeat(100)]); _paq.push(['trackPageView']);`),
    'matomo-bulk': matomo(`_paq.push(['trackAllContentImpressions']);`,
      `<div data-track-content data-content-name="Πανό 1" data-content-piece="εικόνα" data-content-target="/a">one</div>
       <div data-track-content data-content-name="Banner 😀" data-content-piece="text">two</div>
       <div data-track-content data-content-name="Τρίτο">three</div>`),
    'matomo-events': matomo(`_paq.push(['trackEvent', 'Κατηγορία', 'Ενέργεια 😀', 'Όνομα & = %', 3]);
      _paq.push(['addEcommerceItem', 'SKU-Ω', 'Φέτα 🧀', ['Τυριά', 'Ελληνικά'], 12.5, 2]);
      _paq.push(['addEcommerceItem', 'SKU-2', 'Ελιές', 'Ελαιόλαδο', 7, 1]);
      _paq.push(['trackEcommerceOrder', 'παραγγελία-1', 32, 30, 2, 0, false]);`),
    manual: `<!doctype html><meta charset="utf-8"><body>
<img src="${T}?kind=img&t=%CE%A9&u=1">
<script>
var T = ${JSON.stringify(T)};
navigator.sendBeacon(T + '?via=url', 'kind=beacon-string&t=Ω');
navigator.sendBeacon(T, new URLSearchParams([['kind', 'beacon-usp'], ['t', '😀'], ['a[b]', '1']]));
var fd = new FormData(); fd.append('kind', 'beacon-formdata'); fd.append('n[a]', 'Ελλάδα');
navigator.sendBeacon(T + '?q=1', fd);
window.__done = true;
</script></body>`,
  };
}

/** Hand-checked Lines (what Rails records for the manual page). */
const MANUAL_LINES = [
  '{"kind":"img","t":"Ω","u":"1"}',
  '{"via":"url","kind":"beacon-string","t":"Ω"}',
  '{"kind":"beacon-usp","t":"😀","a":{"b":"1"}}',
  '{"q":"1","kind":"beacon-formdata","n":{"a":"Ελλάδα"}}',
];

t.test('real trackers in headless Chromium', async (t) => {
  if (!existsSync(MATOMO_JS)) throw new Error(`${MATOMO_JS} is missing: the browser tier needs Matomo's tracker (SCRATCHD_MATOMO_JS, as scripts/test-all.sh sets it, or ../shared/clients/matomo.js beside the checkout; in the trixie chroot, enter it from the checkout's parent so that directory is mounted too)`);
  ensureChromium();
  const matomoJs = readFileSync(MATOMO_JS);

  // The pages' origin: a second loopback address, so every hit is cross-origin.
  let html: Record<string, string> = {};
  const site = http.createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname.slice(1);
    if (path === 'matomo.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(matomoJs);
    } else if (html[path] !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html[path]);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.2', resolve));
  t.teardown(() => site.close());
  const pageOrigin = `http://127.0.0.2:${(site.address() as AddressInfo).port}`;

  const d = await startDaemon({
    config: { flavors: [{ name: 'site', hosts: ['127.0.0.1'], timeZone: 'Europe/Athens', cors: { origins: [pageOrigin] } }] },
  });
  t.teardown(() => d.stop());
  const tracker = `http://127.0.0.1:${d.port}/track`;
  html = pages(tracker);

  const userDataDir = mkdtempSync(join(tmpdir(), 'scratchd-chromium-'));
  t.teardown(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser: Browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${userDataDir}`],
  });
  t.teardown(() => browser.close());

  const hits: Hit[] = [];
  const problems: string[] = [];
  for (const mode of Object.keys(html)) {
    const page = await browser.newPage();
    const cdp: CDPSession = await page.createCDPSession();
    await cdp.send('Network.enable');
    await cdp.send('Log.enable');
    await cdp.send('Runtime.enable');
    const pending = new Map<string, Hit>();
    const bodies: Promise<void>[] = [];
    let lastHit = Date.now();
    cdp.on('Network.requestWillBeSent', (e) => {
      if (!e.request.url.startsWith(tracker) || e.request.method === 'OPTIONS') return;
      const headers = Object.fromEntries(Object.entries(e.request.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
      const body = Buffer.concat((e.request.postDataEntries ?? []).map((p) => Buffer.from(p.bytes ?? '', 'base64')));
      const hit: Hit = {
        id: e.requestId, mode, method: e.request.method, url: new URL(e.request.url), contentType: headers['content-type'] ?? '',
        body: body.length > 0 ? body : Buffer.from(e.request.postData ?? ''), done: false,
      };
      hits.push(hit);
      pending.set(e.requestId, hit);
      lastHit = Date.now();
      if (e.request.hasPostData === true && hit.body.length === 0) {
        // Beacons' bodies are not in the event: ask for them while the request is alive.
        bodies.push(cdp.send('Network.getRequestPostData', { requestId: e.requestId }).then(
          (r) => { hit.body = Buffer.from(r.postData, (r as { base64Encoded?: boolean }).base64Encoded === true ? 'base64' : 'utf8'); },
          (err: Error) => { if (!/No post data/i.test(err.message)) problems.push(`${mode}: body of ${hit.url.search}: ${err.message}`); },
        ));
      }
    });
    cdp.on('Network.loadingFinished', (e) => {
      const h = pending.get(e.requestId);
      if (h !== undefined) h.done = true;
    });
    cdp.on('Network.loadingFailed', (e) => {
      const h = pending.get(e.requestId);
      if (h === undefined) return;
      h.done = true;
      if (e.corsErrorStatus !== undefined || e.blockedReason !== undefined) {
        problems.push(`${mode}: ${h.method} ${h.url.pathname} failed: ${e.errorText} ${JSON.stringify(e.corsErrorStatus ?? e.blockedReason)}`);
      }
    });
    cdp.on('Log.entryAdded', (e) => {
      if (/CORS|Access-Control|cross-origin/i.test(e.entry.text)) problems.push(`${mode}: console: ${e.entry.text}`);
    });
    cdp.on('Runtime.consoleAPICalled', (e) => {
      const text = e.args.map((a) => String(a.value ?? a.description ?? '')).join(' ');
      if (e.type === 'error' || /CORS|Access-Control/i.test(text)) problems.push(`${mode}: console.${e.type}: ${text}`);
    });
    cdp.on('Runtime.exceptionThrown', (e) => problems.push(`${mode}: exception: ${e.exceptionDetails.exception?.description ?? e.exceptionDetails.text}`));

    await page.goto(`${pageOrigin}/${mode}`, { waitUntil: 'load' });
    await page.waitForFunction('window.__done === true', { timeout: 20_000 });
    // Quiet: every hit answered and nothing new for a second (Matomo's own
    // retries would come in that time).
    await until('pending.size > 0', () => pending.size > 0, 15_000);
    await until('[...pending.values()].every((h) => h.done) && Date.now() - lastHit ...', () => [...pending.values()].every((h) => h.done) && Date.now() - lastHit > 1000, 30_000);
    await Promise.all(bodies);
    t.ok(pending.size > 0, `${mode}: the browser sent hits`);
    await page.close();
  }

  t.same(problems, [], 'no CORS error, failed hit or page error');

  const want: string[] = [];
  for (const hit of hits) want.push(...await expectedLines(hit));
  await until('dayLines(d).length >= want.length', () => dayLines(d).length >= want.length, 20_000);
  // Anything late (a resend) would land within the next moments.
  await new Promise((r) => setTimeout(r, 500));
  const got = dayLines(d);
  t.equal(got.length, want.length, `one Line per logical hit (${hits.length} requests captured)`);
  t.same([...got].sort(), [...want].sort(), 'each Line equals what Rails\' params give for the request the browser sent');
  t.equal(new Set(got).size, got.length, 'no duplicate Line');

  const modesOf = (pred: (h: Hit) => boolean) => new Set(hits.filter(pred).map((h) => h.mode));
  t.ok(modesOf((h) => h.method === 'POST' && h.body.length === 0 && h.url.search.length > 1).has('matomo-default'),
    'Matomo\'s default hit is a beacon with the query in the URL and an empty body');
  t.ok(modesOf((h) => h.method === 'POST' && h.body.length > 2000).has('matomo-long'), 'the long hit carries its query in the body');
  t.ok(modesOf((h) => bulkEntries(h.body) !== null).has('matomo-bulk'), 'content impressions come as a bulk body');
  t.ok(modesOf((h) => h.method === 'POST').has('matomo-xhr'), 'the XHR mode posts');
  t.ok(modesOf((h) => h.method === 'GET').has('matomo-image'), 'the image mode GETs');
  t.equal(hits.filter((h) => h.mode === 'matomo-bulk').length, 1, 'one bulk request...');
  t.equal(got.filter((l) => l.includes('"c_n"')).length, 3, '...recorded as one Line per content impression');

  // By hand: what a reader of the Line would check.
  for (const line of MANUAL_LINES) t.ok(got.includes(line), `recorded: ${line}`);
  const values = got.map((l) => JSON.parse(l) as Record<string, unknown>);
  const title = (s: string) => values.filter((v) => v.action_name === s).length;
  t.equal(title('Καλημέρα κόσμε 😀'), 1, 'Greek and emoji title, once');
  t.equal(title('XHR ✓ διαπιστευτήρια'), 1, 'the credentialed XHR hit, once (CORS: no image resend)');
  t.equal(title('Μέθοδος POST'), 1);
  t.equal(values.filter((v) => v.e_c === 'Κατηγορία' && v.e_a === 'Ενέργεια 😀' && v.e_n === 'Όνομα & = %' && v.e_v === '3').length, 1, 'the event');
  const order = values.find((v) => v.ec_id === 'παραγγελία-1');
  t.ok(order, 'the ecommerce order');
  t.same(JSON.parse(String(order?.ec_items ?? '[]')), [['SKU-Ω', 'Φέτα 🧀', ['Τυριά', 'Ελληνικά'], '12.5', '2'], ['SKU-2', 'Ελιές', 'Ελαιόλαδο', '7', '1']]);
});
