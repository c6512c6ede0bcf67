// Hostile input on the public port, against the real daemon with its default
// limits. Each case is a subtest stating what the abuser gets; around each, a
// normal client keeps asking for pixels and must keep getting them fast, the
// daemon's memory stays bounded, it does not crash, and scratchd's rejection
// counters move by exactly the reasons expected (uWS refuses some requests
// itself, before scratchd sees them: those move no scratchd counter).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { join } from 'node:path';
import t, { type TAP } from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines, drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { sleep, until } from '../helpers/wait.js';
import { rawExchange, rssKiB, stats, watch, type Counts, type RawResult } from '../helpers/watch.js';

const d = await startDaemon();
const w = watch(d);
const baseRss = rssKiB(d.proc.pid!);
/** Generous: the daemon idles around 100 MiB; abuse may add buffers, never unbounded growth. */
const rssLimit = baseRss + 150 * 1024;
t.teardown(async () => {
  await w.stop();
  await d.stop();
});

const req = (target: string, headers = 'Host: gr.test\r\n') => `GET ${target} HTTP/1.1\r\n${headers}\r\n`;
const uws431 = /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/;
const uws505 = /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/;
const uws400 = /^HTTP\/1\.1 400 Bad Request\r\nConnection: close\r\n/;
/**
 * uWS's answer to a head over its limit: 431 and close. It answers before
 * it has read everything the client sends, and closing a socket with unread
 * data sends a reset, which may discard the 431 before the client reads it.
 */
function refused431(t: TAP, r: RawResult, what = 'uWS: 431 or a reset'): void {
  t.ok(r.text === '' || uws431.test(r.text), `${what} (got ${JSON.stringify(r.text.slice(0, 40))})`);
  t.ok(r.closed, 'closed by the server');
}
/** Lines the abuse itself got accepted, besides the normal client's: checked in the file at the end. */
const acceptedAbuse: string[] = [];

/** Rejections counted per reason between two /stats snapshots. */
function delta(before: Counts, after: Counts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.rejected)) if (v !== before.rejected[k]) out[k] = v - (before.rejected[k] ?? 0);
  for (const [m, byStatus] of Object.entries(after.requests)) {
    for (const [s, v] of Object.entries(byStatus)) {
      if (s === '200' && m === 'GET') continue; // the normal client's
      const was = before.requests[m]?.[s] ?? 0;
      if (v !== was) out[`${m} ${s}`] = v - was;
    }
  }
  return out;
}

/**
 * One abuse case. `counted` is what scratchd must count for it: rejection
 * reasons and answered (method, status) pairs other than the normal client's
 * GET 200s; {} when uWS refuses everything before scratchd sees it.
 */
function abuse(name: string, counted: Record<string, number>, fn: (t: TAP) => Promise<void>): void {
  t.test(name, async (t) => {
    const before = await stats(d);
    w.reset();
    await fn(t as unknown as TAP);
    const rounds = w.latencies.length;
    await until('three more rounds of the normal client', () => w.latencies.length >= rounds + 3);
    t.equal(d.proc.exitCode, null, 'daemon still running');
    t.equal(d.proc.signalCode, null, 'daemon not killed');
    t.same([...new Set(w.outcomes)], [200], `normal client: every one of ${w.outcomes.length} requests answered 200`);
    // A daemon stalled by the abuse answers in seconds; a busy CI machine
    // alone can delay a loopback request by hundreds of ms.
    t.ok(w.p99() < 2000, `normal client p99 ${w.p99().toFixed(1)} ms < 2000 ms`);
    t.ok(w.peakRssKiB < rssLimit, `peak VmRSS ${w.peakRssKiB} KiB < ${rssLimit} KiB`);
    const after = await stats(d);
    t.same(delta(before, after), counted, 'counters moved by exactly these');
  });
}

abuse('1 MB request line: uWS answers 431 (or resets) and closes, ×10 at once', {}, async (t) => {
  const line = req(`/track?a=${'x'.repeat(1 << 20)}`);
  const results = await Promise.all(Array.from({ length: 10 }, () => rawExchange(d.port, line, 5000)));
  for (const r of results) refused431(t, r);
  // Just over the limit, in one write that uWS reads whole: the 431 itself.
  const small = await rawExchange(d.port, req(`/track?a=${'x'.repeat(17_000)}`));
  t.match(small.text, uws431);
  t.ok(small.closed);
});

abuse('10 000 headers: uWS answers 431 and closes', {}, async (t) => {
  let headers = 'Host: gr.test\r\n';
  for (let i = 0; i < 10_000; i++) headers += `X-H${i}: v\r\n`;
  const r = await rawExchange(d.port, req('/track?a=1', headers), 5000);
  refused431(t, r);
  // Over uWS's own header count (somewhere between 60 and 200), same answer.
  let many = 'Host: gr.test\r\n';
  for (let i = 0; i < 200; i++) many += `X-H${i}: v\r\n`;
  t.match((await rawExchange(d.port, req('/track?a=1', many))).text, uws431);
});

abuse('huge header values: 431 past the head limit; a long unknown Host is a counted 400', { unknown_flavor: 2001, 'GET 400': 2001 }, async (t) => {
  const big = await rawExchange(d.port, req('/track?a=1', `Host: gr.test\r\nX-Big: ${'y'.repeat(100_000)}\r\n`), 5000);
  refused431(t, big);
  const bigHost = await request(d.port, '/track?a=1', { host: `${'g'.repeat(10_000)}.test` });
  t.equal(bigHost.status, 400);
  t.equal(bigHost.body.toString(), 'unknown_flavor\n');
  // A scanner's 2000 different Host headers: answered, and the lookup cache stays bounded.
  const statuses = await Promise.all(Array.from({ length: 20 }, async (_, c) => {
    const s: number[] = [];
    for (let i = 0; i < 100; i++) s.push((await request(d.port, '/track?a=1', { host: `h${c}-${i}-${'z'.repeat(200)}.test` })).status);
    return s;
  }));
  t.same([...new Set(statuses.flat())], [400]);
});

abuse('slowloris: 50 heads at one byte a second for 4 s get nothing and cost nothing', {}, async (t) => {
  const head = req('/track?slow=1', `Host: gr.test\r\nUser-Agent: ${'s'.repeat(100)}\r\n`);
  const socks = Array.from({ length: 50 }, () => {
    const s = net.connect(d.port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (c) => got.push(c));
    s.on('error', () => {});
    return { s, got };
  });
  for (let i = 0; i < 4; i++) {
    for (const { s } of socks) s.write(head[i]!);
    await sleep(1000);
  }
  t.ok(socks.every(({ got }) => got.length === 0), 'no answer to an unfinished head');
  t.ok(socks.every(({ s }) => !s.destroyed), 'still open: uWS closes them only at its idle timeout (about 30 s, not reset by the trickle)');
  for (const { s } of socks) s.destroy();
});

abuse('2000 idle connections: accepted, held, harmless', {}, async (t) => {
  const socks: net.Socket[] = [];
  let connected = 0;
  for (let i = 0; i < 2000; i++) {
    const s = net.connect(d.port, '127.0.0.1', () => connected++);
    s.on('error', () => {});
    socks.push(s);
  }
  await until('2000 connections accepted', () => connected === 2000);
  const rss = rssKiB(d.proc.pid!);
  t.ok(rss < rssLimit, `VmRSS with 2000 idle connections: ${rss} KiB`);
  // A burst from the normal side while they are all open.
  const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => request(d.port, `/track?burst=${i}`, { host: 'gr.test' })));
  t.same([...new Set(burst.map((r) => r.status))], [200]);
  for (let i = 0; i < 50; i++) acceptedAbuse.push(`{"burst":"${i}"}`);
  await sleep(500);
  t.ok(socks.every((s) => !s.destroyed), 'none closed by the server meanwhile');
  for (const s of socks) s.destroy();
});

abuse('pipelining: 100 requests in one write get 100 answers; garbage after a request gets silence', {}, async (t) => {
  let many = '';
  for (let i = 0; i < 100; i++) many += req(`/track?pipe=${i}`);
  const r = await rawExchange(d.port, many, 1000);
  t.equal(r.text.match(/HTTP\/1\.1 200 OK\r\n/g)?.length, 100);
  for (let i = 0; i < 100; i++) acceptedAbuse.push(`{"pipe":"${i}"}`);
  const g = await rawExchange(d.port, req('/track?before=garbage') + 'BLAH\r\n\r\n' + req('/track?after=garbage'), 1000);
  t.equal(g.text.match(/HTTP\/1\.1 /g)?.length, 1, 'the request before the garbage is answered, nothing after it');
  t.notOk(g.closed, 'uWS neither answers nor closes: the connection idles until its timeout');
  acceptedAbuse.push('{"before":"garbage"}');
});

abuse('binary garbage: 64 KiB of random bytes never reach scratchd (seeded: 505 and close)', {}, async (t) => {
  // Seeded so a failure can be reproduced: bytes from a fixed xorshift.
  const junk = Buffer.alloc(65536);
  let x = 0x2545f491;
  for (let i = 0; i < junk.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    junk[i] = x & 0xff;
  }
  const r = await rawExchange(d.port, junk, 2000);
  t.match(r.text, uws505, 'uWS: not an HTTP/1.1 request line');
  t.ok(r.closed, 'closed');
  const rnd = await rawExchange(d.port, randomBytes(4096), 1000);
  t.notMatch(rnd.text, /HTTP\/1\.1 [23]\d\d/);
});

abuse('HTTP/1.0, HTTP/0.9, HTTP/2 preface, HAProxy\'s default check: uWS answers 505 and closes', {}, async (t) => {
  for (const data of [
    'GET /track?a=1 HTTP/1.0\r\nHost: gr.test\r\n\r\n',
    'GET /health HTTP/1.0\r\n\r\n',
    'OPTIONS / HTTP/1.0\r\n\r\n', // option httpchk without arguments
    'GET /track?a=1\r\n', // HTTP/0.9: no version at all
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  ]) {
    const r = await rawExchange(d.port, data, 2000);
    t.match(r.text, uws505, JSON.stringify(data));
    t.ok(r.closed, 'closed');
  }
  // HAProxy with `option httpchk GET /health HTTP/1.1` + Host: the check works.
  t.match((await rawExchange(d.port, 'GET /health HTTP/1.1\r\nHost: check\r\nConnection: close\r\n\r\n')).text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok\n$/);
});

// A 20-digit Content-Length reaches the handler, which refuses it (413,
// counted as body_too_large), but uWS then fails the body and what the
// client gets is uWS's own 400 and close. A negative one the handler counts
// as framing (its answer waits for uWS to finish parsing, which refuses it
// first: uWS's 400 is what the client gets).
abuse('unknown and odd methods: 404, counted as OTHER; framing tricks: uWS 400 and close', { 'OTHER 404': 4, body_too_large: 1, 'POST 413': 1, framing: 1 }, async (t) => {
  for (const m of ['FOO', 'PROPFIND', 'TRACE', 'CONNECT']) {
    const r = await rawExchange(d.port, `${m} /track?a=1 HTTP/1.1\r\nHost: gr.test\r\nConnection: close\r\n\r\n`);
    t.match(r.text, /^HTTP\/1\.1 404 Not Found\r\n/, m);
  }
  for (const [what, data] of [
    ['Content-Length with Transfer-Encoding', 'POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na=1\r\n0\r\n\r\n'],
    ['negative Content-Length', 'POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: text/plain\r\nContent-Length: -1\r\n\r\na=1'],
    ['20-digit Content-Length', 'POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: text/plain\r\nContent-Length: 99999999999999999999\r\n\r\na=1'],
    ['two Host headers', 'GET /track?a=1 HTTP/1.1\r\nHost: gr.test\r\nHost: uk.test\r\n\r\n'],
    ['no Host in HTTP/1.1', 'GET /track?a=1 HTTP/1.1\r\n\r\n'],
    ['obsolete line folding', 'GET /track?a=1 HTTP/1.1\r\nHost: gr.test\r\nX: a\r\n b\r\n\r\n'],
    ['a bad chunk size', 'POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\na=1\r\n0\r\n\r\n'],
  ] as const) {
    const r = await rawExchange(d.port, data);
    t.match(r.text, uws400, what);
    t.ok(r.closed, `${what}: closed`);
  }
});

abuse('NUL, CR, LF in the query: raw ones never get a 2xx; %-encoded ones are escaped inside one JSON line', {}, async (t) => {
  const nul = await rawExchange(d.port, req('/track?a=1\x00b'));
  t.match(nul.text, uws505, 'raw NUL: the request line is not HTTP/1.1 to uWS');
  t.ok(nul.closed);
  const lf = await rawExchange(d.port, req('/track?a=1\nb'));
  t.match(lf.text, uws505, 'raw LF');
  t.ok(lf.closed);
  const cr = await rawExchange(d.port, req('/track?a=1\rb'));
  t.equal(cr.text, '', 'raw CR: no answer at all');
  t.notOk(cr.closed, 'raw CR: uWS keeps waiting for the head until its idle timeout');
  for (const [q, line] of [
    ['nul=1%00b', '{"nul":"1\\u0000b"}'],
    ['crlf=1%0D%0A%7B%22forged%22%3A1%7D', '{"crlf":"1\\r\\n{\\"forged\\":1}"}'],
    ['ls=%E2%80%A8%E2%80%A9', '{"ls":"\u2028\u2029"}'],
  ]) {
    t.equal((await request(d.port, `/track?${q}`, { host: 'gr.test' })).status, 200, q);
    acceptedAbuse.push(line!);
  }
});

// uWS.js turns the raw query into a JS string as UTF-8, replacing bytes that
// are not with U+FFFD: scratchd cannot see them, where Rack 2.2 would refuse
// them (invalid_utf8). Browsers %-encode, so only hand-made requests meet
// this; docs/decisions.md records it as a decision. %-encoded ones are refused.
abuse('raw (not %-encoded) bytes that are not UTF-8 in a GET query: stored as U+FFFD; %-encoded: 400 invalid_utf8', { invalid_utf8: 1, 'GET 400': 1 }, async (t) => {
  const r = await rawExchange(d.port, Buffer.concat([Buffer.from('GET /track?raw='), Buffer.from([0xe9]),
    Buffer.from(' HTTP/1.1\r\nHost: gr.test\r\nConnection: close\r\n\r\n')]));
  t.match(r.text, /^HTTP\/1\.1 200 /);
  acceptedAbuse.push('{"raw":"\ufffd"}');
  const enc = await request(d.port, '/track?raw=%E9', { host: 'gr.test' });
  t.equal(enc.status, 400);
  t.equal(enc.body.toString(), 'invalid_utf8\n');
});

abuse('100 KB query: uWS 431 and close; just over maxQueryBytes: scratchd 414 too_long', { too_long: 1, 'GET 414': 1 }, async (t) => {
  const r = await rawExchange(d.port, req(`/track?a=${'q'.repeat(100_000)}`), 5000);
  refused431(t, r);
  const over = await request(d.port, `/track?a=${'q'.repeat(8200)}`, { host: 'gr.test' });
  t.equal(over.status, 414);
  t.equal(over.body.toString(), 'too_long\n');
});

abuse('10 000 parameters: 431 in a GET, 400 too_many_params in a POST body and in a GET under the byte limit', { too_many_params: 2, 'GET 400': 1, 'POST 400': 1 }, async (t) => {
  const r = await rawExchange(d.port, req(`/track?${'a&'.repeat(10_000)}`), 5000);
  refused431(t, r);
  const get = await request(d.port, `/track?${'a&'.repeat(4000)}`, { host: 'gr.test' });
  t.equal(get.status, 400);
  t.equal(get.body.toString(), 'too_many_params\n');
  const body = Array.from({ length: 10_000 }, (_, i) => i.toString(36)).join('&'); // 38 KB, under maxBodyBytes
  const post = await request(d.port, '/track', { host: 'gr.test', method: 'POST', body, headers: { 'content-type': 'text/plain' } });
  t.equal(post.status, 400);
  t.equal(post.body.toString(), 'too_many_params\n');
});

abuse('nesting 10 000 deep: 431 in a GET; in a POST body 400 depth, or what Rack makes of it', { depth: 1, 'POST 400': 1, 'POST 204': 1 }, async (t) => {
  const r = await rawExchange(d.port, req(`/track?a${'[b]'.repeat(10_000)}=1`), 5000);
  refused431(t, r);
  const post = (body: string) => request(d.port, '/track', { host: 'gr.test', method: 'POST', body, headers: { 'content-type': 'text/plain' } });
  const deep = await post(`a${'[b]'.repeat(10_000)}=1`);
  t.equal(deep.status, 400);
  t.equal(deep.body.toString(), 'depth\n');
  // Rack 2.2 reads a[][][]… as a[] holding a child whose key is all brackets:
  // nil, one level deep. Not an error there, so not one here.
  t.equal((await post(`a${'[]'.repeat(10_000)}=1`)).status, 204);
  acceptedAbuse.push('{"a":[null]}');
});

t.test('after all of it: clean exit, every accepted Line persisted once and whole, nothing else', async (t) => {
  await w.stop();
  t.equal(await d.stop(), 0);
  const lines = dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'));
  for (const l of lines) JSON.parse(l);
  const expected = [...w.accepted.map((q) => `{"normal":"${q.slice(7)}"}`), ...acceptedAbuse];
  const short = (l: string) => (l.length > 80 ? `${l.slice(0, 80)}… (${l.length} chars)` : l);
  const have = new Set(lines);
  const want = new Set(expected);
  t.same(lines.filter((l) => !want.has(l)).map(short), [], 'no Line that was not accepted');
  t.same(expected.filter((l) => !have.has(l)).map(short), [], 'no accepted Line missing');
  t.equal(lines.length, have.size, 'no Line twice');
  const c = drainedCounters(d.logs, 'file');
  t.same(c, { persisted: expected.length, failed: 0, dropped: 0, retried: 0 });
});
