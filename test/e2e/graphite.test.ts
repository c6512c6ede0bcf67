// stats.graphite's connection (src/stats/graphite.ts) against a Carbon that
// is not there: every sample dropped and counted, and docs/stats.md's "logged at
// most once a minute" holds for the whole of it, not once per reason; a
// Carbon that accepts and never reads costs samples, never a queue.
import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { startGraphite } from '../../src/stats/graphite.js';

t.test('a dead Carbon: samples dropped, counted, one log line a minute', async (t) => {
  // A port that refuses: listened on once, then closed.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); },
  }));
  const g = startGraphite({ host: '127.0.0.1', port, prefix: 'scratchd', intervalMs: 3_600_000 }, () => ({ a: 1 }), log);
  t.teardown(() => g.close());
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 50)); // the refused connect reported, the socket closed
    g.sample();
  }
  await new Promise((r) => setTimeout(r, 50));
  t.equal(g.counters.sent, 0);
  t.equal(g.counters.dropped, 6, 'every sample dropped and counted');
  t.equal(lines.length, 1, `one log line in the minute: ${lines.map((l) => l.msg).join(' | ')}`);
});

// A Carbon that accepts and never reads (SIGSTOPped): once the kernel's
// buffers are full, each sample finds the last one still waiting and is
// dropped, so no more than one sample's bytes wait in scratchd.
t.test('a Carbon that never reads: samples dropped once one is waiting, not queued', async (t) => {
  let received = 0;
  const accepted: Socket[] = [];
  const server = createServer((s) => {
    accepted.push(s);
    s.pause();
    s.on('data', (c: Buffer) => { received += c.length; });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => { for (const s of accepted) s.destroy(); server.close(r); }));
  const port = (server.address() as { port: number }).port;
  // A large sample, so the kernel's buffers fill after a few.
  const big = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`key${i}`, i]));
  const g = startGraphite({ host: '127.0.0.1', port, prefix: 'scratchd', intervalMs: 3_600_000 }, () => big, pino({ level: 'silent' }));
  t.teardown(() => g.close());
  await new Promise((r) => setTimeout(r, 100)); // connected
  // Until the kernel's buffers are full and a sample waits in scratchd.
  for (let i = 0; i < 2_000 && g.counters.dropped === 0; i++) {
    g.sample();
    await new Promise((r) => setImmediate(r));
  }
  const sent = g.counters.sent;
  t.equal(g.counters.dropped, 1, `the first sample that found one waiting was dropped (after ${sent} sent)`);
  for (let i = 0; i < 50; i++) {
    g.sample();
    await new Promise((r) => setImmediate(r));
  }
  t.equal(g.counters.sent, sent, 'none sent while one waits');
  t.equal(g.counters.dropped, 51, 'each dropped and counted');
  t.equal(received, 0, 'Carbon read nothing');
});
