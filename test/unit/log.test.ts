// The rate-limited error logger: one line per kind and interval, and a
// bounded memory of kinds whatever the callers pass.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { rateLimited } from '../../src/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()));
      cb();
    },
  }));
  return { log, lines };
}

t.test('the same kind logs once per interval, then says how many it suppressed', async (t) => {
  const { log, lines } = capture();
  const limited = rateLimited(log, 50);
  for (let i = 0; i < 100; i++) limited('delivery -195', { n: i }, 'kafka delivery failed');
  await new Promise((r) => setTimeout(r, 80));
  limited('delivery -195', { n: 100 }, 'kafka delivery failed');
  await new Promise((r) => setImmediate(r));
  t.same(lines.map((l) => [l.kind, l.suppressed]), [['delivery -195', 0], ['delivery -195', 99]]);
});

t.test('the memory of kinds is bounded: a flood of distinct kinds keeps at most maxKinds', async (t) => {
  const { log, lines } = capture();
  const limited = rateLimited(log, 60_000, 8);
  for (let i = 0; i < 10_000; i++) limited(`kind ${i % 1000}`, {}, 'x');
  await new Promise((r) => setImmediate(r));
  // Each distinct kind logs when first seen; forgotten kinds with suppressed
  // repeats say so. The bound shows as: kind 0 was forgotten and logs again.
  t.ok(lines.filter((l) => l.kind === 'kind 0' && l.msg === 'x').length > 1, 'kind 0 forgotten and logged again');
});
