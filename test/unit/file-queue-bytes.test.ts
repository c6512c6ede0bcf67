// The file backend's queue is bounded in bytes as well as in Lines (issue 30,
// hostile 6): large Lines for a broken flavor cannot take more than its share
// of queueBytes, nor all flavors together more than queueBytes.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { fileConfig, flavor, line, setClock, startFile, until } from '../helpers/file-backend.js';

const MiB = 1024 * 1024;
const big = (i: number) => `{"i":${i},"pad":"${'x'.repeat(100_000)}"}`;

t.test('a failing flavor holds at most queueBytes / flavors; the whole queue at most queueBytes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'file-queue-bytes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'gr'), 'not a directory'); // every write of gr fails (ENOTDIR)
  const gr = flavor('gr');
  const tr = flavor('tr');
  setClock(Date.parse('2026-12-07T10:00:00Z'));
  const b = await startFile(fileConfig(dir, { queueCapacity: 65536, queueBytes: 2 * MiB, retryMs: 50 }), [gr, tr]);
  t.teardown(() => b.abandon());
  b.send(line(gr, Date.now(), big(0)));
  await until(() => b.counters.failed > 0);
  for (let i = 1; i < 100; i++) {
    b.send(line(gr, Date.now(), big(i)));
    await new Promise((r) => setImmediate(r));
  }
  const s = b.fileStats().flavors.gr!;
  t.ok(s.queued * 100_000 <= 1 * MiB, `gr holds ${s.queued} Lines of 100 kB: within its share of 1 MiB`);
  t.equal(s.queued + s.dropped, 100, 'the rest dropped, counted for gr');
  // tr is healthy, but 30 Lines of 100 kB sent in one turn do not fit in 2 MiB.
  let accepted = 0;
  for (let i = 0; i < 30; i++) if (b.send(line(tr, Date.now(), big(i)))) accepted++;
  t.ok(accepted < 30 && (accepted + s.queued) * 100_000 <= 2 * MiB, `${accepted} accepted for tr: the whole queue within 2 MiB`);
});
