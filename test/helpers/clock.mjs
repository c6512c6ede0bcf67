// Preloaded into the daemon by tests only (node --import, which serving
// threads run too): Date.now runs from SCRATCHD_TEST_CLOCK (ms since the
// epoch) at start, moves with real time, and jumps to the time sent over the
// IPC channel ({ clock }). The offset lives in shared memory that the main
// thread hands to its serving threads (threads/serving.ts), so every thread
// has moved before the jump is acknowledged.
import { isMainThread, workerData } from 'node:worker_threads';

const realNow = Date.now;
const KEY = Symbol.for('scratchd.testClock');
if (isMainThread) {
  const offset = new Float64Array(new SharedArrayBuffer(8));
  offset[0] = Number(process.env.SCRATCHD_TEST_CLOCK) - realNow();
  globalThis[KEY] = offset.buffer;
  Date.now = () => realNow() + offset[0];
  process.on('message', (m) => {
    offset[0] = m.clock - realNow();
    process.send({ clock: m.clock });
  });
  process.channel?.unref();
} else if (workerData?.testClock instanceof SharedArrayBuffer) {
  const offset = new Float64Array(workerData.testClock);
  Date.now = () => realNow() + offset[0];
}
