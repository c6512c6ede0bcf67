// Preloaded into the daemon by tests only (node --import): Date.now runs
// from SCRATCHD_TEST_CLOCK (ms since the epoch) at start, moves with real
// time, and jumps to the time sent over the IPC channel ({ clock }).
const realNow = Date.now;
let offset = Number(process.env.SCRATCHD_TEST_CLOCK) - realNow();
Date.now = () => realNow() + offset;
process.on('message', (m) => {
  offset = m.clock - realNow();
  process.send({ clock: m.clock });
});
process.channel?.unref();
