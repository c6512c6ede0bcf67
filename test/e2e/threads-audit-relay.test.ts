/**
 * An audit of the relay's bound (issue 24): with the main thread kept busy
 * by scrapes of /metrics, the serving threads keep answering, refuse with
 * 503 relay_full rather than grow, and every 200 is in the day file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { connect, type Conn } from '../helpers/conn.js';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { sleep } from '../helpers/wait.js';

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

t.test('main thread busy with scrapes: 200 or 503 relay_full, memory bounded, every 200 written', async (t) => {
  const d = await startDaemon({ config: { threads: 2, limits: { maxBulkBytes: 16384, maxRelayBytes: 65536 } } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  let stop = false;
  const statuses = new Map<number, number>();
  const ok: string[] = [];
  const pad = 'p'.repeat(400);
  const track = Array.from({ length: 32 }, async (_, c) => {
    const conn = await connect(d.port);
    for (let n = 0; !stop; n += 16) {
      const ids = Array.from({ length: 16 }, (_, i) => `${c}-${n + i}`);
      const got = await conn.send(ids.map((id) => ({ path: `/track?id=${id}&pad=${pad}`, headers: { host: 'gr.test' } })));
      got.forEach((a, i) => {
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        if (a.status === 200) ok.push(ids[i]!);
      });
    }
    conn.close();
  });
  let scrapes = 0;
  const scrape = Array.from({ length: 16 }, async () => {
    while (!stop) {
      // One scrape per connection: the stats listener is a plain HTTP server, not a pipelining test.
      try {
        const conn: Conn = await connect(d.statsPort);
        await conn.send([{ path: '/metrics' }]);
        scrapes++;
        conn.close();
      } catch { /* closed under load: scrape again */ }
    }
  });
  const rss: number[] = [];
  for (let i = 0; i < 16; i++) {
    await sleep(500);
    rss.push(Math.round(rssMiB(d.proc.pid!)));
  }
  stop = true;
  await Promise.all([...track, ...scrape]);
  t.comment(`scrapes ${scrapes}; statuses ${JSON.stringify([...statuses])}; RSS MiB ${rss.join(' ')}`);
  t.same([...statuses.keys()].filter((s) => s !== 200 && s !== 503), [], 'only 200 and 503');
  t.ok(Math.max(...rss.slice(4)) - Math.min(...rss.slice(0, 4)) < 150, `RSS bounded (${rss.join(' ')} MiB)`);
  t.equal(await d.stop(), 0);
  const inFile = new Set(dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens')).map((l) => (JSON.parse(l) as { id: string }).id));
  t.same(ok.filter((id) => !inFile.has(id)).slice(0, 5), [], `every 200 in the file (${ok.length})`);
});
