// SIGTERM under load: every request answered 200 is in the files, once.
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines, drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

t.test('SIGTERM under load loses no 200-answered request', async (t) => {
  const d = await startDaemon({ config: { shutdown: { graceMs: 300, drainTimeoutMs: 10_000 } } });
  const answered = new Set<number>();
  let sent = 0;
  let refused = 0;
  let stop = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  const client = async () => {
    while (!stop) {
      const n = sent++;
      try {
        const r = await request(d.port, `/track?n=${n}`, { host: 'gr.test', agent });
        if (r.status === 200) answered.add(n);
      } catch {
        refused++; // the listener is gone: expected once draining starts
        if (d.proc.exitCode !== null) return;
      }
    }
  };
  const clients = Array.from({ length: 20 }, client);
  // Under way before the signal, however slow the machine is today.
  await until('100 requests answered', () => answered.size > 100);
  d.proc.kill('SIGTERM');
  const code = await d.exited;
  stop = true;
  await Promise.all(clients);
  agent.destroy();
  t.equal(code, 0, 'clean exit');
  t.ok(answered.size > 100, `${answered.size} answered before and during the drain`);
  const lines = dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'));
  const written = lines.map((l) => Number((JSON.parse(l) as { n: string }).n));
  t.equal(new Set(written).size, written.length, 'no Line twice');
  t.same([...answered].filter((n) => !written.includes(n)), [], 'every 200 is in the file');
  t.equal(drainedCounters(d.logs, 'file').persisted, written.length);
  t.comment(`answered ${answered.size}, written ${written.length}, failed after drain began ${refused}`);
});

t.test('draining: /health answers 503, answers close their connections', async (t) => {
  const d = await startDaemon({ config: { shutdown: { graceMs: 2000 } } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.equal((await request(d.port, '/health', { agent })).status, 200);
  d.proc.kill('SIGTERM');
  await d.waitLog((l) => l.msg === 'draining');
  const h = await request(d.port, '/health', { agent });
  t.equal(h.status, 503);
  t.equal(h.body.toString(), 'draining\n');
  t.equal(h.headers.connection, 'close');
  agent.destroy();
  t.equal(await d.exited, 0);
});

t.test('drain timeout: queued Lines reported lost, exit 2', async (t) => {
  const d = await startDaemon({
    user: { uid: 65534, gid: 65534 },
    config: { shutdown: { graceMs: 0, drainTimeoutMs: 300 }, backends: { file: { retryMs: 50 } } },
  });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(d.dir, 'log'), { mode: 0o755 }); // root's: writes keep failing
  t.equal((await request(d.port, '/track?n=1', { host: 'gr.test' })).status, 200);
  await d.waitLog((l) => l.msg === 'write failed; retrying');
  t.equal(await d.stop(), 2);
  const timedOut = d.logs.find((l) => l.msg === 'drain timed out; queued Lines lost') as { lost: Record<string, number> };
  t.same(timedOut.lost, { file: 1 });
});
