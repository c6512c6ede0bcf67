/**
 * An audit of the serving threads' promises (issue 24), against the built
 * daemon: a clean stop under load loses no answered Line, a second SIGTERM
 * cuts the drain, a reload that adds and removes a flavor under load keeps
 * every answered Line, and /stats counts exactly what was answered.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { connect, type Conn } from '../helpers/conn.js';
import { startDaemon, tempDir } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { stopProcess } from '../helpers/sigstop.js';
import { stats } from '../helpers/kafka-daemon.js';
import { freePort, sleep, until, within } from '../helpers/wait.js';

const idsIn = (lines: readonly string[]): string[] => lines.map((l) => (JSON.parse(l) as { id: string }).id);

/** Within `ms`, or the reason it did not come. */
const exitWithin = <T>(p: Promise<T>, ms: number, what: string): Promise<T | string> => within(p, ms, `${what}: not within ${ms} ms`);


/**
 * 32 connections, each sending 8 pipelined hits at a time (ids "conn-n")
 * until stop(); `ok` collects the ids answered 200. A refused or closed
 * connection is opened again: the daemon may be stopping.
 */
function pipelinedLoad(port: number): { ok: string[]; stop(): Promise<void> } {
  const ok: string[] = [];
  let stopped = false;
  const loops = Array.from({ length: 32 }, async (_, c) => {
    let conn: Conn | null = null;
    for (let n = 0; !stopped; n += 8) {
      try {
        conn ??= await connect(port);
        const ids = Array.from({ length: 8 }, (_, i) => `${c}-${n + i}`);
        const got = await conn.send(ids.map((id) => ({ path: `/track?id=${id}`, headers: { host: 'gr.test' } })));
        got.forEach((a, i) => { if (a.status === 200) ok.push(ids[i]!); });
        if (!conn.open) conn = null;
      } catch {
        conn = null; // refused or closed: the daemon stops
        await sleep(5);
      }
    }
    conn?.close();
  });
  return { ok, stop: async () => { stopped = true; await Promise.all(loops); } };
}

t.test('SIGTERM then SIGINT at once: the second cuts the drain at once (exit 2)', async (t) => {
  const d = await startDaemon({ config: { threads: 4, shutdown: { graceMs: 30_000, drainTimeoutMs: 60_000 } } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  const conn = await connect(d.port);
  t.equal((await conn.send([{ path: '/track?id=1', headers: { host: 'gr.test' } }]))[0]!.status, 200);
  conn.close();
  // An operator's stop and Ctrl-C in one breath: both reach the main
  // thread in one turn (in either order), before the threads said they
  // drain. (Two of one kind could merge in the kernel; two kinds cannot.)
  // Stopped for certain before they are sent: a SIGCONT discards a stop
  // still pending, and the two would then arrive one by one.
  await stopProcess(d.proc);
  d.proc.kill('SIGTERM');
  d.proc.kill('SIGINT');
  d.proc.kill('SIGCONT');
  t.equal(await exitWithin(d.exited, 10_000, 'exit'), 2, 'exit 2 long before the 30 s grace period ends');
  t.ok(d.logs.some((l) => l.msg === 'drain cut short by a second signal; queued Lines lost'), 'logged as cut short');
});

t.test('SIGTERM under load (threads: 4): every 200 is in the day file, exit 0', async (t) => {
  const d = await startDaemon({ config: { threads: 4, shutdown: { graceMs: 300 } } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  const { ok, stop } = pipelinedLoad(d.port);
  await until('some load', () => ok.length > 3000, 30_000);
  d.proc.kill('SIGTERM');
  const code = await exitWithin(d.exited, 30_000, 'exit');
  await stop();
  t.equal(code, 0, 'exit 0');
  const inFile = new Set(idsIn(dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'))));
  t.same(ok.filter((id) => !inFile.has(id)).slice(0, 5), [], `every 200 in the file (${ok.length} answered, ${inFile.size} in the file)`);
});

t.test('a reload that removes one flavor and adds another under load (threads: 4): every 200 written', async (t) => {
  const before = [
    { name: 'one', hosts: ['one.test'], timeZone: 'UTC' },
    { name: 'two', hosts: ['two.test'], timeZone: 'UTC' },
  ];
  const after = [
    { name: 'one', hosts: ['one.test'], timeZone: 'UTC' },
    { name: 'three', hosts: ['two.test'], timeZone: 'UTC' },
  ];
  const d = await startDaemon({ config: { threads: 4, flavors: before } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  const ok: string[] = [];
  const bad: string[] = [];
  let stop = false;
  const loops = Array.from({ length: 16 }, async (_, c) => {
    const conn = await connect(d.port);
    for (let n = 0; !stop; n += 4) {
      const ids = Array.from({ length: 4 }, (_, i) => `${c}-${n + i}`);
      const got = await conn.send(ids.map((id, i) => ({ path: `/track?id=${id}`, headers: { host: i % 2 === 0 ? 'one.test' : 'two.test' } })));
      got.forEach((a, i) => (a.status === 200 ? ok : bad).push(`${ids[i]} ${a.status}`));
    }
    conn.close();
  });
  await until('some load', () => ok.length > 2000, 30_000);
  for (let k = 0; k < 4; k++) {
    writeFileSync(join(d.dir, 'config.json'), JSON.stringify({ ...d.config, flavors: k % 2 === 0 ? after : before }, null, 2));
    d.proc.kill('SIGHUP');
    await d.waitLog(() => d.logs.filter((l) => l.msg === 'config reloaded').length > k, 15_000);
    const now = ok.length;
    await until('load after the reload', () => ok.length > now + 1000, 30_000);
  }
  stop = true;
  await Promise.all(loops);
  t.same(bad.slice(0, 5), [], 'every request answered 200');
  t.same(d.logs.filter((l) => Number(l.level) >= 50).map((l) => l.msg).slice(0, 5), [], 'no error logged');
  t.equal(await d.stop(), 0, 'exit 0');
  const day = dayOf(Date.now(), 'UTC');
  const inFiles = new Set(['one', 'two', 'three'].flatMap((f) => idsIn(dayLines(join(d.dir, 'log'), f, day))));
  const answered = ok.map((s) => s.split(' ')[0]!);
  t.same(answered.filter((id) => !inFiles.has(id)).slice(0, 5), [], `every 200 in a file (${answered.length})`);
  t.equal(inFiles.size, answered.length, 'and nothing else');
});

t.test('/stats right after the answers (threads: 4): the sums are exact', async (t) => {
  const d = await startDaemon({ config: { threads: 4 } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  const got = { 200: 0, 400: 0 };
  for (let round = 0; round < 3; round++) {
    await Promise.all(Array.from({ length: 16 }, async (_, c) => {
      const conn = await connect(d.port);
      const answers = await conn.send([
        ...Array.from({ length: 10 }, (_, i) => ({ path: `/track?id=${round}-${c}-${i}`, headers: { host: 'gr.test' } })),
        ...Array.from({ length: 3 }, (_, i) => ({ path: `/track?id=x${i}`, headers: { host: 'nowhere.test' } })),
      ]);
      for (const a of answers) if (a.status === 200) got[200]++; else if (a.status === 400) got[400]++;
      conn.close();
    }));
    const s = await stats(d);
    t.equal(s.requests?.GET?.['200'], got[200], `round ${round}: GET 200 = the client's count (${got[200]})`);
    t.equal(s.requests?.GET?.['400'], got[400], `round ${round}: GET 400 = the client's count (${got[400]})`);
    const rejected = Object.values(s.rejected ?? {}).reduce((a: number, b) => a + Number(b), 0);
    t.equal(rejected, got[400], `round ${round}: rejected summed = the refusals`);
  }
  t.equal(await d.stop(), 0);
});

t.test('dedup across threads (threads: 4): one hit repeated on 32 connections is one Line', async (t) => {
  const d = await startDaemon({
    config: { threads: 4, flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'UTC', dedup: { key: ['pv_id', 'r'], windowMs: 60_000 } }] },
  });
  t.teardown(() => d.proc.kill('SIGKILL'));
  const conns = await Promise.all(Array.from({ length: 32 }, () => connect(d.port)));
  for (let round = 0; round < 5; round++) {
    // Every connection at once: the repeats race on different threads.
    const got = await Promise.all(conns.map((c, i) => c.send([{ path: `/track?pv_id=p${round}&r=1&id=${round}-${i}`, headers: { host: 'gr.test' } }])));
    t.same(got.flat().filter((a) => a.status !== 200).length, 0, `round ${round}: all answered 200`);
  }
  for (const c of conns) c.close();
  t.equal(await d.stop(), 0);
  const pv = dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'UTC')).map((l) => (JSON.parse(l) as { pv_id: string }).pv_id);
  t.same([...pv].sort(), ['p0', 'p1', 'p2', 'p3', 'p4'], 'one Line per page view');
});

t.test('pipelining at threads: 4: each connection\'s Lines in the order it sent them', async (t) => {
  const d = await startDaemon({ config: { threads: 4 } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  let notOk = 0;
  await Promise.all(Array.from({ length: 24 }, async (_, c) => {
    const conn = await connect(d.port);
    for (let n = 0; n < 600; n += 60) {
      const got = await conn.send(Array.from({ length: 60 }, (_, i) => ({ path: `/track?c=${c}&n=${n + i}`, headers: { host: 'gr.test' } })));
      notOk += got.filter((a) => a.status !== 200).length;
    }
    conn.close();
  }));
  t.equal(notOk, 0, 'every request answered 200');
  t.equal(await d.stop(), 0);
  const byConn = new Map<string, number[]>();
  for (const l of dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'))) {
    const { c, n } = JSON.parse(l) as { c: string; n: string };
    byConn.set(c, [...(byConn.get(c) ?? []), Number(n)]);
  }
  t.equal(byConn.size, 24);
  const outOfOrder = [...byConn].filter(([, ns]) => ns.length !== 600 || ns.some((n, i) => n !== i)).map(([c]) => c);
  t.same(outOfOrder, [], 'every connection: 0..599 in order');
});

t.test('SIGTERM while the threads start, under connection attempts (threads: 4): every 200 in the file, exit 0', async (t) => {
  const port = await freePort();
  let stop = false;
  const ok: string[] = [];
  let spawned: (() => void) | null = null;
  const started = new Promise<void>((r) => { spawned = r; });
  const clients = Array.from({ length: 8 }, async (_, c) => {
    await started;
    for (let n = 0; !stop; n++) {
      try {
        const conn = await connect(port);
        const [a] = await conn.send([{ path: `/track?id=${c}-${n}`, headers: { host: 'gr.test' } }]);
        if (a!.status === 200) ok.push(`${c}-${n}`);
        conn.close();
      } catch {
        await sleep(1);
      }
    }
  });
  let code: number | string | null = null;
  const d = await startDaemon({
    config: { threads: 4, listen: `127.0.0.1:${port}`, shutdown: { graceMs: 200 } },
    onSpawn: (proc) => {
      spawned!();
      // While it starts: the threads come up one by one and may already accept.
      proc.stdout!.on('data', (b: Buffer) => {
        if (code === null && b.toString().includes('stats listener ready')) {
          code = 'signalled';
          setTimeout(() => proc.kill('SIGTERM'), 20);
        }
      });
    },
  }).catch((err: Error) => err);
  const exited = d instanceof Error ? null : d.exited;
  t.ok(exited !== null, `the start reported (${d instanceof Error ? d.message : 'ok'})`);
  if (exited === null) { stop = true; await Promise.all(clients); return; }
  code = await exitWithin(exited, 30_000, 'exit');
  stop = true;
  await Promise.all(clients);
  t.equal(code, 0, 'exit 0');
  t.ok((d as { logs: Record<string, unknown>[] }).logs.some((l) => l.msg === 'stopped during start-up'), 'the SIGTERM came during start-up');
  const inFile = new Set(idsIn(dayLines(join((d as { dir: string }).dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'))));
  t.same(ok.filter((id) => !inFile.has(id)).slice(0, 5), [], `every 200 in the file (${ok.length})`);
});

t.test('a flavor with hashed IPs added by a reload, salts not writable (threads: 4): one hashed IP per visitor', async (t) => {
  const stateDir = join(tempDir('scratchd-threads-audit-'), 'state');
  mkdirSync(stateDir);
  writeFileSync(join(stateDir, 'salts'), 'not a directory'); // every salt write fails: salts live in RAM only
  const plain = { name: 'gr', hosts: ['gr.test'], timeZone: 'UTC' };
  const hashed = { name: 'tr', hosts: ['tr.test'], timeZone: 'UTC', enrich: { ip: 'ip' }, privacy: { ip: 'hashed' } };
  const d = await startDaemon({ config: { threads: 4, stateDir, flavors: [plain] } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  writeFileSync(join(d.dir, 'config.json'), JSON.stringify({ ...d.config, flavors: [plain, hashed] }, null, 2));
  d.proc.kill('SIGHUP');
  await d.waitLog((l) => l.msg === 'config reloaded', 15_000);
  // The new flavor's first hits, one connection each: they spread over the threads.
  // (A thread that meets a day without a salt makes its own, and cannot share it.)
  const conns = await Promise.all(Array.from({ length: 16 }, () => connect(d.port)));
  const got = await Promise.all(conns.map((c, i) => c.send([{ path: `/track?id=${i}`, headers: { host: 'tr.test' } }])));
  // And again a moment later, on the same connections.
  await sleep(500);
  got.push(...await Promise.all(conns.map((c, i) => c.send([{ path: `/track?id=again-${i}`, headers: { host: 'tr.test' } }]))));
  for (const c of conns) c.close();
  t.same(got.flat().map((a) => a.status), got.map(() => 200), 'all answered 200');
  t.equal(await d.stop(), 0);
  const ips = dayLines(join(d.dir, 'log'), 'tr', dayOf(Date.now(), 'UTC')).map((l) => (JSON.parse(l) as { ip: string }).ip);
  t.equal(ips.length, 32);
  t.equal(new Set(ips).size, 1, `one hashed IP for 127.0.0.1 (${new Set(ips).size} seen)`);
});

t.test('SIGTERM, listening itself: once draining, the listener is closed (a new connection is refused, not left in a backlog nobody accepts)', async (t) => {
  const d = await startDaemon({ config: { threads: 2, shutdown: { graceMs: 4000 } } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  d.proc.kill('SIGTERM');
  await d.waitLog((l) => l.msg === 'draining', 10_000);
  const started = Date.now();
  const outcome = await new Promise<string>((resolve) => {
    const sock = net.connect(d.port, '127.0.0.1');
    sock.on('error', (err: NodeJS.ErrnoException) => resolve(`${err.code} after ${Date.now() - started} ms`));
    sock.on('connect', () => {
      sock.write('GET /track?id=late HTTP/1.1\r\nHost: gr.test\r\n\r\n');
      sock.on('data', () => { resolve('answered'); sock.destroy(); });
      sock.on('close', () => resolve(`closed unanswered after ${Date.now() - started} ms`));
    });
  });
  t.match(outcome, /^ECONNREFUSED after/, `refused at once (got: ${outcome})`);
  t.equal(await exitWithin(d.exited, 20_000, 'exit'), 0, 'exit 0');
});

t.test('a second signal under load (threads: 4): every 200 is in the file or counted lost', async (t) => {
  const d = await startDaemon({ config: { threads: 4, shutdown: { graceMs: 2000, drainTimeoutMs: 60_000 } } });
  t.teardown(() => d.proc.kill('SIGKILL'));
  const { ok, stop } = pipelinedLoad(d.port);
  await until('some load', () => ok.length > 3000, 30_000);
  // Both signals in one turn of the main thread (see the first test).
  d.proc.kill('SIGSTOP');
  d.proc.kill('SIGTERM');
  d.proc.kill('SIGINT');
  d.proc.kill('SIGCONT');
  const code = await exitWithin(d.exited, 20_000, 'exit');
  await stop();
  t.equal(code, 2, `exit 2 (got ${code})`);
  const cut = d.logs.find((l) => l.msg === 'drain cut short by a second signal; queued Lines lost') as { lost?: { file?: number } } | undefined;
  const inFile = new Set(idsIn(dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'))));
  const missing = ok.filter((id) => !inFile.has(id)).length;
  t.ok((cut?.lost?.file ?? 0) >= missing, `answered 200 and not in the file (${missing}) ≤ counted lost (${cut?.lost?.file}); ${ok.length} answered`);
});
