// WatchdogSec=: WATCHDOG=1 at half of WATCHDOG_USEC, from the event loop;
// nothing without WATCHDOG_USEC.
import t from 'tap';
import { daemonConfig, holdSocket, mainJs } from '../helpers/socket-activation.js';
import { sleep, until } from '../helpers/wait.js';

t.test('WATCHDOG_USEC set: WATCHDOG=1 at half the interval', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({});
  const gen = await sock.start([process.execPath, mainJs, '--config', cfg.file], { env: { ...process.env, WATCHDOG_USEC: '400000' } });
  await gen.waitNotify('READY=1');
  const pings = () => gen.notified.filter((s) => s === 'WATCHDOG=1').length;
  const since = Date.now();
  const before = pings();
  await until('five WATCHDOG=1 after READY=1', () => pings() >= before + 5, 10_000);
  const ms = Date.now() - since;
  t.ok(ms >= 4 * 200 - 100, `five pings took ${ms} ms: one per 200 ms, not faster`);
  t.equal(await gen.stop(), 0);
});

t.test('no WATCHDOG_USEC: no WATCHDOG=1', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({});
  const gen = await sock.start([process.execPath, mainJs, '--config', cfg.file]);
  await gen.waitNotify('READY=1');
  await sleep(500);
  t.equal(await gen.stop(), 0);
  t.same(gen.notified, ['READY=1', 'STOPPING=1']);
});
