// Audit 2: a chunked POST refused before its body is read (unknown Host,
// Content-Type, query too long, multipart without a usable boundary) was
// answered and the connection kept: a chunk extension in the unread body
// (`5;a=b`) then made uWS read the rest of the stream as body, holding the
// connection until its idle timeout and swallowing its next request. The
// refusal must close such a connection at once, and nothing behind it be
// recorded.
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { rawExchange, stats } from '../helpers/watch.js';

const d = await startDaemon();
t.teardown(() => d.stop());

const behind = (id: string) => `GET /track?behind=${id} HTTP/1.1\r\nHost: gr.test\r\n\r\n`;
const extBody = '5;a=b\r\nhello\r\n0\r\n\r\n';
const post = (target: string, host: string, type: string) =>
  `POST ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n${extBody}`;
const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]!);

const cases: [name: string, data: string, status: string, reason: string][] = [
  ['unknown Host', post('/track', 'nowhere.test', 'text/plain') + behind('host'), '400', 'unknown_flavor'],
  ['another Content-Type', post('/track', 'gr.test', 'image/png') + behind('type'), '415', 'bad_content_type'],
  ['a query too long', post(`/track?q=${'x'.repeat(9000)}`, 'gr.test', 'text/plain') + behind('query'), '414', 'too_long'],
];

for (const [name, data, status, reason] of cases) {
  t.test(name, async (t) => {
    const before = await stats(d);
    const r = await rawExchange(d.port, data, 5000);
    t.ok(r.closed, 'closed by the server');
    t.ok(r.ms < 4000, `at once (${r.ms} ms), not at uWS's idle timeout`);
    t.same(statuses(r.text), [status], 'the refusal, nothing after it');
    const after = await stats(d);
    t.equal(after.rejected[reason]! - before.rejected[reason]!, 1, `counted as rejected.${reason}`);
  });
}

// Over maxBodyBytes by counting, mid-body: the rest is never read either.
t.test('a chunked body past maxBodyBytes, a chunk extension in its rest', async (t) => {
  const before = await stats(d);
  const big = 'a='.padEnd(70_000, 'x');
  const data = `POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`
    + `${big.length.toString(16)}\r\n${big}\r\n${extBody}${behind('big')}`;
  const r = await rawExchange(d.port, data, 5000);
  t.ok(r.closed, 'closed by the server');
  t.ok(r.ms < 4000, `at once (${r.ms} ms), not at uWS's idle timeout`);
  t.same(statuses(r.text), ['413'], 'the refusal, nothing after it');
  const after = await stats(d);
  t.equal(after.rejected.body_too_large! - before.rejected.body_too_large!, 1, 'counted as rejected.body_too_large');
});

t.test('nothing behind them recorded', async (t) => {
  t.equal(await d.stop(), 0);
  t.same(dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens')), []);
});
