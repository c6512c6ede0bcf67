// The browser tier of Global Privacy Control (issue 26): a real browser that
// sends `Sec-GPC: 1`, and the flavor's `privacy.gpc` rule applied to what it
// sends. Debian's chromium, driven by puppeteer-core as in browser.test.ts,
// loads pages from a second loopback origin: a Matomo page view (its default
// beacon, with a user id) and a plain <img> pixel carrying `_id` and `uid`.
//
// How the browser is made to send the header: Chromium 156 sends `Sec-GPC: 1`
// on every request (and has `navigator.globalPrivacyControl` true) only when
// launched with `--enable-features=GlobalPrivacyControl,GlobalPrivacyControlForce`:
// `GlobalPrivacyControl` alone turns the feature on with the user's setting
// off, and a headless profile has no way to switch that setting. So the
// header comes from the browser's own network stack, not from the driver.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import t, { type Test } from 'tap';
import { root, startDaemon, type Daemon } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const MATOMO_JS = process.env.SCRATCHD_MATOMO_JS ?? join(root, '../shared/clients/matomo.js');
const GPC_FEATURES = '--enable-features=GlobalPrivacyControl,GlobalPrivacyControlForce';
/** privacy.identifiers' default (Matomo's visitor identifiers). */
const IDENTIFIERS = ['_id', 'uid', 'cid', 'cip', '_idts', '_idvc', '_viewts', '_ref'];

type Line = Record<string, unknown>;

function pages(T: string): Record<string, string> {
  return {
    matomo: `<!doctype html><meta charset="utf-8"><title>scratchd</title><body><script>
var _paq = window._paq = window._paq || [];
_paq.push(['setTrackerUrl', ${JSON.stringify(T)}]);
_paq.push(['setSiteId', '1']);
_paq.push(['setUserId', 'u-42']);
_paq.push(['setDocumentTitle', 'Ιδιωτικότητα']);
_paq.push(['trackPageView']);
_paq.push([function () { window.__done = true; }]);
</script><script src="/matomo.js"></script></body>`,
    pixel: `<!doctype html><meta charset="utf-8"><body>
<img src="${T}?kind=img&_id=0123456789abcdef&uid=u-7">
<script>window.__done = true;</script></body>`,
  };
}

function dayLines(d: Daemon): Line[] {
  const dir = join(d.dir, 'log', 'site');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.log')).sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== ''))
    .map((l) => JSON.parse(l) as Line);
}

async function gpcDrops(d: Daemon): Promise<number> {
  const m = (await request(d.statsPort, '/metrics')).body.toString();
  return Number(/scratchd_privacy_total\{flavor="site",signal="gpc",action="drop"\} (\d+)/.exec(m)?.[1] ?? 0);
}

/** What one visit of the pages shows: the hits sent to /track, their answers, the pages' errors. */
interface Visit { hits: number; statuses: number[]; problems: string[]; gpc: unknown[]; userAgent: string }

async function visit(browser: Browser, pageOrigin: string, tracker: string): Promise<Visit> {
  const v: Visit = { hits: 0, statuses: [], problems: [], gpc: [], userAgent: await browser.userAgent() };
  for (const mode of ['matomo', 'pixel']) {
    const page = await browser.newPage();
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    await cdp.send('Runtime.enable');
    const pending = new Set<string>();
    let lastHit = Date.now();
    const ours = new Set<string>();
    cdp.on('Network.requestWillBeSent', (e) => {
      if (!e.request.url.startsWith(tracker) || e.request.method === 'OPTIONS') return;
      v.hits++;
      ours.add(e.requestId);
      pending.add(e.requestId);
      lastHit = Date.now();
    });
    cdp.on('Network.responseReceived', (e) => { if (ours.has(e.requestId)) v.statuses.push(e.response.status); });
    cdp.on('Network.loadingFinished', (e) => pending.delete(e.requestId));
    cdp.on('Network.loadingFailed', (e) => {
      if (!pending.delete(e.requestId)) return;
      v.problems.push(`${mode}: a hit failed: ${e.errorText} ${JSON.stringify(e.corsErrorStatus ?? e.blockedReason ?? '')}`);
    });
    cdp.on('Runtime.consoleAPICalled', (e) => {
      if (e.type === 'error') v.problems.push(`${mode}: console.error: ${e.args.map((a) => String(a.value ?? a.description ?? '')).join(' ')}`);
    });
    cdp.on('Runtime.exceptionThrown', (e) => v.problems.push(`${mode}: exception: ${e.exceptionDetails.exception?.description ?? e.exceptionDetails.text}`));
    await page.goto(`${pageOrigin}/${mode}`, { waitUntil: 'load' });
    await page.waitForFunction('window.__done === true', { timeout: 20_000 });
    v.gpc.push(await page.evaluate('navigator.globalPrivacyControl'));
    await until('a hit sent', () => ours.size > 0, 15_000);
    await until('every hit answered, then a quiet second', () => pending.size === 0 && Date.now() - lastHit > 1000, 30_000);
    await page.close();
  }
  return v;
}

t.test('Sec-GPC from Chromium: anonymized or dropped as the flavor says, recorded in full without it', async (t) => {
  if (!existsSync(MATOMO_JS)) throw new Error(`${MATOMO_JS} is missing: set SCRATCHD_MATOMO_JS (scripts/test-all.sh does)`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/test-all.sh installs chromium before the suite`);
  const matomoJs = readFileSync(MATOMO_JS);

  let html: Record<string, string> = {};
  const site = http.createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname.slice(1);
    if (path === 'matomo.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(matomoJs);
    else if (html[path] !== undefined) res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html[path]);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.2', resolve));
  t.teardown(() => site.close());
  const pageOrigin = `http://127.0.0.2:${(site.address() as AddressInfo).port}`;

  const flavor = (gpc: 'anonymize' | 'drop') => ({
    name: 'site', hosts: ['127.0.0.1'], timeZone: 'Europe/Athens', cors: { origins: [pageOrigin] },
    enrich: { ip: 'ip', userAgent: 'ua' }, privacy: { gpc, field: 'privacy' },
  });
  const anonymizing = await startDaemon({ config: { flavors: [flavor('anonymize')] } });
  t.teardown(() => anonymizing.stop());
  const dropping = await startDaemon({ config: { flavors: [flavor('drop')] } });
  t.teardown(() => dropping.stop());

  const launch = async (gpc: boolean): Promise<Browser> => {
    const userDataDir = mkdtempSync(join(tmpdir(), 'scratchd-chromium-gpc-'));
    t.teardown(() => rmSync(userDataDir, { recursive: true, force: true }));
    const b = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true, userDataDir,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--user-data-dir=${userDataDir}`, ...(gpc ? [GPC_FEATURES] : [])],
    });
    t.teardown(() => b.close());
    return b;
  };
  const withGpc = await launch(true);
  const plain = await launch(false);

  /** The Lines one visit adds to the daemon's day file (the file backend writes within moments). */
  const recorded = async (d: Daemon, browser: Browser, want: number): Promise<{ v: Visit; lines: Line[] }> => {
    const before = dayLines(d).length;
    html = pages(`http://127.0.0.1:${d.port}/track`);
    const v = await visit(browser, pageOrigin, `http://127.0.0.1:${d.port}/track`);
    if (want > 0) await until('the Lines written', () => dayLines(d).length >= before + want, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    return { v, lines: dayLines(d).slice(before) };
  };
  const byKind = (lines: Line[]) => ({ pixel: lines.filter((l) => l.kind === 'img'), matomo: lines.filter((l) => l.action_name === 'Ιδιωτικότητα') });
  const answered = (t: Test, v: Visit, what: string) => {
    t.same(v.problems, [], `${what}: no failed hit, console error or exception`);
    t.equal(v.statuses.length, v.hits, `${what}: every hit answered`);
    t.ok(v.statuses.every((s) => s === 200 || s === 204), `${what}: answered 200/204 (${v.statuses.join(',')})`);
  };

  await t.test('gpc "anonymize": no IP, User-Agent or identifiers, "privacy":"anonymize"', async (t) => {
    const { v, lines } = await recorded(anonymizing, withGpc, 2);
    t.same(v.gpc, [true, true], 'the page sees navigator.globalPrivacyControl');
    answered(t, v, 'anonymize');
    t.equal(lines.length, v.hits, 'one Line per hit');
    const { pixel, matomo } = byKind(lines);
    t.same(pixel, [{ kind: 'img', privacy: 'anonymize' }], 'the pixel: its identifiers, IP and User-Agent gone');
    t.equal(matomo.length, 1, 'the Matomo page view');
    const pv = matomo[0] ?? {};
    t.equal(pv.privacy, 'anonymize', 'the action taken, in privacy.field');
    t.equal(pv.idsite, '1', 'the rest of the hit kept');
    for (const k of ['ip', 'ua', ...IDENTIFIERS]) t.notOk(k in pv, `no ${k} in the page view`);
  });

  await t.test('gpc "drop": nothing recorded, the page sees no error', async (t) => {
    const { v, lines } = await recorded(dropping, withGpc, 0);
    answered(t, v, 'drop');
    t.ok(v.hits >= 2, 'the hits were sent');
    t.equal(await gpcDrops(dropping), v.hits, 'each hit counted as dropped for GPC');
    t.same(lines, [], 'no Line');
  });

  for (const [name, d] of [['anonymize', anonymizing], ['drop', dropping]] as const) {
    await t.test(`without Sec-GPC, a gpc "${name}" flavor records the same hits in full`, async (t) => {
      const { v, lines } = await recorded(d, plain, 2);
      t.ok(v.gpc.every((g) => g !== true), `the page sees no GPC (navigator.globalPrivacyControl: ${v.gpc.join(', ')})`);
      answered(t, v, name);
      t.equal(lines.length, v.hits, 'one Line per hit');
      const { pixel, matomo } = byKind(lines);
      t.same(pixel, [{ kind: 'img', _id: '0123456789abcdef', uid: 'u-7', ip: '127.0.0.1', ua: v.userAgent }], 'the pixel in full');
      t.equal(matomo.length, 1, 'the Matomo page view');
      const pv = matomo[0] ?? {};
      t.match(pv, { ip: '127.0.0.1', ua: v.userAgent, uid: 'u-42', _id: /^[0-9a-f]{16}$/ }, 'IP, User-Agent and identifiers kept');
      t.notOk('privacy' in pv, 'no privacy action');
    });
  }
});
