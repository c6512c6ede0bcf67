// The drain pace's reading of the process: a busy event loop reads as busy,
// an idle one as idle (whatever else runs on the machine: it is this
// process's own loop and CPU time).
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { ProcessLoad } from '../../src/kafka/process-load.js';

t.test('a loop kept busy reads near 1, a loop left idle near 0', async (t) => {
  const load = new ProcessLoad();
  const until = performance.now() + 150;
  while (performance.now() < until) { /* busy on purpose */ }
  const busy = load.sinceLast(performance.now());
  t.ok(busy > 0.9, `busy: ${busy.toFixed(2)}`);
  // The process's own other threads (tap's TypeScript loader, GC) may still be
  // busy in the first window after the loop went idle: the quietest of a few.
  const idle: number[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 300));
    idle.push(load.sinceLast(performance.now()));
  }
  t.ok(Math.min(...idle) < 0.3, `idle: ${idle.map((v) => v.toFixed(2)).join(' ')}`);
});
