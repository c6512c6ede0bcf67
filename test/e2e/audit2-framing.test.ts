// Audit 2: bodies on requests that scratchd answers without reading them.
// A chunk extension (`5;a=b`) makes uWS read the rest of the stream as body,
// so a GET, HEAD, OPTIONS or 404 carrying one was answered and then held
// until uWS's idle timeout, eating the connection's next request (a proxy's
// next client, on a reused connection). And /robots.txt skipped the framing
// check, so a request hidden behind two Content-Lengths that differ was
// served. Each must be refused with a 400 and a close, at once, and nothing
// hidden recorded.
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
const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]!);

const cases: [name: string, data: string][] = [
  ['GET /track, chunk extension', `GET /track?get=ext HTTP/1.1\r\nHost: gr.test\r\nTransfer-Encoding: chunked\r\n\r\n${extBody}${behind('get')}`],
  ['HEAD /track, chunk extension', `HEAD /track?head=ext HTTP/1.1\r\nHost: gr.test\r\nTransfer-Encoding: chunked\r\n\r\n${extBody}${behind('head')}`],
  ['OPTIONS /track, chunk extension', `OPTIONS /track HTTP/1.1\r\nHost: gr.test\r\nTransfer-Encoding: chunked\r\n\r\n${extBody}${behind('options')}`],
  ['GET /health, chunk extension', `GET /health HTTP/1.1\r\nHost: gr.test\r\nTransfer-Encoding: chunked\r\n\r\n${extBody}${behind('health')}`],
  ['PUT /other, chunk extension', `PUT /other HTTP/1.1\r\nHost: gr.test\r\nTransfer-Encoding: chunked\r\n\r\n${extBody}${behind('other')}`],
  ['GET /robots.txt, two Content-Lengths', `GET /robots.txt HTTP/1.1\r\nHost: gr.test\r\nContent-Length: 3\r\nContent-Length: 58\r\n\r\nabc${behind('robots')}`],
  ['HEAD /robots.txt, two Content-Lengths', `HEAD /robots.txt HTTP/1.1\r\nHost: gr.test\r\nContent-Length: 3\r\nContent-Length: 58\r\n\r\nabc${behind('robots-head')}`],
];

for (const [name, data] of cases) {
  t.test(name, async (t) => {
    const before = await stats(d);
    const r = await rawExchange(d.port, data, 5000);
    t.ok(r.closed, 'closed by the server');
    t.ok(r.ms < 4000, `at once (${r.ms} ms), not at uWS's idle timeout`);
    // A request behind in the same read: uWS may drop the connection before
    // the answer is written (README), never serve the hidden one.
    t.ok(statuses(r.text).every((s) => s === '400'), `only a 400, if anything: ${JSON.stringify(statuses(r.text))}`);
    const after = await stats(d);
    t.equal(after.rejected.framing! - before.rejected.framing!, 1, 'counted as rejected.framing');
  });
}

t.test('nothing of them recorded, no hidden request served', async (t) => {
  t.equal(await d.stop(), 0);
  const lines = dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'));
  t.same(lines, []);
});
