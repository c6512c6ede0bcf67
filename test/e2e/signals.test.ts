// Signals at chosen moments: during start-up (the config file is a FIFO, so
// start-up waits in its read until the test writes it), and during a drain.
import { execFileSync } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { daemonConfig, holdSocket, mainJs, type Activator, type Generation } from '../helpers/socket-activation.js';
import { sleep, until, within } from '../helpers/wait.js';

/** A config that is a FIFO; `serve()` waits until scratchd opens it for reading, and `write()` hands it the text. */
async function fifoConfig(over: Record<string, unknown> = {}): Promise<{ file: string; opened(): Promise<{ write(): Promise<void> }> }> {
  const cfg = daemonConfig(over);
  const text = await readFile(cfg.file, 'utf8');
  const file = join(cfg.dir, 'config.fifo');
  execFileSync('mkfifo', [file]);
  return {
    file,
    // Opening for writing returns once the reader has opened it: scratchd is then in its read.
    async opened() {
      const h = await open(file, 'w');
      return {
        async write() {
          await h.writeFile(text);
          await h.close();
        },
      };
    },
  };
}

const start = (sock: Activator, file: string): Promise<Generation> => sock.start([process.execPath, mainJs, '--config', file]);
const logged = (gen: Generation, msg: string) => gen.logs().some((l) => l.msg === msg);

t.test('SIGTERM during start-up ends the start cleanly: exit 0, never READY=1', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = await fifoConfig();
  const gen = await start(sock, cfg.file);
  const reading = await cfg.opened();
  process.kill(gen.pid, 'SIGTERM');
  await sleep(100); // delivered while start-up is still in its read
  await reading.write();
  t.equal(await gen.exited, 0, 'exit 0, not killed by the signal');
  t.ok(logged(gen, 'stopped during start-up'), 'logged');
  t.same(gen.notified, ['STOPPING=1'], 'never READY=1');
});

t.test('SIGHUP during start-up is applied once start-up is done', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = await fifoConfig();
  const gen = await start(sock, cfg.file);
  const reading = await cfg.opened();
  process.kill(gen.pid, 'SIGHUP');
  await sleep(100);
  await reading.write();
  await gen.waitNotify('READY=1');
  await gen.waitNotify('RELOADING=1');
  // The reload reads the FIFO again.
  await (await cfg.opened()).write();
  await until('READY=1 after the reload', () => gen.notified.filter((s) => s === 'READY=1').length === 2);
  await until('"config reloaded" (stdout may trail READY=1)', () => logged(gen, 'config reloaded'));
  t.same(gen.notified.map((s) => s.split('\n')[0]), ['READY=1', 'RELOADING=1', 'READY=1']);
  t.equal(await gen.stop(), 0);
});

t.test('SIGHUP while draining is ignored, and says so', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({ shutdown: { graceMs: 2000 } });
  const gen = await start(sock, cfg.file);
  await gen.waitNotify('READY=1');
  process.kill(gen.pid, 'SIGTERM');
  await gen.waitNotify('STOPPING=1');
  process.kill(gen.pid, 'SIGHUP');
  await until('the SIGHUP to be logged as ignored', () => logged(gen, 'SIGHUP ignored: draining'));
  t.equal(await gen.exited, 0);
  t.same(gen.notified, ['READY=1', 'STOPPING=1'], 'no RELOADING=1 or READY=1 after STOPPING=1');
  t.notOk(logged(gen, 'config reloaded'));
});

t.test('a second SIGTERM ends the drain at once: queued Lines reported lost, exit 2', async (t) => {
  const sock = await holdSocket();
  t.teardown(() => sock.close());
  const cfg = daemonConfig({ shutdown: { graceMs: 60_000, drainTimeoutMs: 120_000 } });
  const gen = await start(sock, cfg.file);
  await gen.waitNotify('READY=1');
  process.kill(gen.pid, 'SIGTERM');
  await until('draining', () => logged(gen, 'draining'));
  process.kill(gen.pid, 'SIGTERM');
  t.equal(await within(gen.exited, 20_000, 'timed out'), 2, 'exit 2 long before the grace period ends');
  const cut = gen.logs().find((l) => l.msg === 'drain cut short by a second signal; queued Lines lost');
  t.match(cut, { signal: 'SIGTERM', lost: { file: 0 } });
});
