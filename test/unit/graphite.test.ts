// stats.graphite's connection (src/stats/graphite.ts) against a Carbon that
// is not there: every sample dropped and counted, and the README's "logged at
// most once a minute" holds for the whole of it, not once per reason.
import { createServer } from 'node:net';
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
