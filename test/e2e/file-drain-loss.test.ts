// Lines the file backend still holds when the drain times out are lost, and
// told to the loss tracker like every other loss (issue 31, recovery 7): the
// window in losses.jsonl counts them beside the queue_full drops, so
// `scratchd rebuild` of its days is what the operator is told to run.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startDaemon } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';

t.test('SIGTERM with a broken flavor directory: the Lines lost at the drain timeout are in the loss window', async (t) => {
  const d = await startDaemon({
    config: { shutdown: { graceMs: 0, drainTimeoutMs: 500 }, backends: { file: { retryMs: 50, queueCapacity: 30 } } },
  });
  // gr's directory is a file: every write of gr fails (ENOTDIR); its share is 30 / 3 flavors.
  mkdirSync(join(d.dir, 'log'), { recursive: true });
  writeFileSync(join(d.dir, 'log', 'gr'), 'not a directory');
  for (let i = 0; i < 20; i++) t.equal((await request(d.port, `/track?n=${i}`, { host: 'gr.test' })).status, 200);
  await d.waitLog((l) => l.msg === 'write failed; retrying');
  t.equal(await d.stop(), 2);
  const timedOut = d.logs.find((l) => l.msg === 'drain timed out; queued Lines lost') as { lost: Record<string, number> };
  t.same(timedOut.lost, { file: 10 }, "gr's share held to the end");
  const windows = readFileSync(join(d.dir, 'state', 'losses.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {
    backend: string; flavor: string; count: number; reasons: Record<string, number>;
  });
  t.match(windows, [{ backend: 'file', flavor: 'gr', count: 20, reasons: { queue_full: 10, drain_timeout: 10 } }], 'every lost Line in one window');
  t.equal(windows.length, 1);
});
