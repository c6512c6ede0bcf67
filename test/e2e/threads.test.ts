/**
 * Serving threads (issue 24), with the file backend: a full relay refuses
 * hits with 503 relay_full, counted and told to the loss tracker, and loses
 * nothing else; a SIGHUP under load reaches every thread, and every request
 * is answered under one complete config, never a mix of two.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { connect, type RawAnswer } from '../helpers/conn.js';
import { startDaemon, tempDir } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { stats } from '../helpers/kafka-daemon.js';
import { sleep, until } from '../helpers/wait.js';

const idsIn = (lines: readonly string[]): string[] => lines.map((l) => (JSON.parse(l) as { id: string }).id);

t.test('a full relay: 503 relay_full, counted, in a loss window; every 200 in the file and nothing else', async (t) => {
  const d = await startDaemon({ config: { threads: 2, limits: { maxBulkBytes: 512, maxRelayBytes: 1024 } } });
  t.teardown(() => d.stop());
  // Lines of about 300 bytes: three fit in a relay, a fourth does not.
  const pad = 'x'.repeat(260);
  const answers = new Map<string, RawAnswer>();
  // Idle, 8 requests written at once are read in one turn of one thread:
  // three fit, five are refused; once the main thread took them, three fit again.
  const solo = await connect(d.port);
  for (let round = 0; round < 2; round++) {
    const ids = Array.from({ length: 8 }, (_, i) => `solo-${round}-${i}`);
    const got = await solo.send(ids.map((id) => ({ path: `/track?id=${id}&pad=${pad}`, headers: { host: 'gr.test' } })));
    got.forEach((a, i) => answers.set(ids[i]!, a));
    t.same(got.map((a) => a.status), [200, 200, 200, 503, 503, 503, 503, 503], `8 at once on an idle daemon: 3 fit the relay (round ${round})`);
    await until('the relay is empty again', async () => ((await stats(d)).threads ?? []).every((th: { relay_bytes: number }) => th.relay_bytes === 0));
  }
  solo.close();
  // 64 connections writing 8 requests at once put more than that in a turn.
  await Promise.all(Array.from({ length: 64 }, async (_, c) => {
    const conn = await connect(d.port);
    for (let n = 0; n < 80; n += 8) {
      const batch = Array.from({ length: 8 }, (_, i) => `${c}-${n + i}`);
      const got = await conn.send(batch.map((id) => ({ path: `/track?id=${id}&pad=${pad}`, headers: { host: 'gr.test' } })));
      got.forEach((a, i) => answers.set(batch[i]!, a));
    }
    conn.close();
  }));
  const ok = [...answers].filter(([, a]) => a.status === 200).map(([id]) => id);
  const full = [...answers].filter(([, a]) => a.status === 503).map(([id]) => id);
  const other = [...answers].filter(([, a]) => a.status !== 200 && !(a.status === 503 && a.body.toString() === 'relay_full\n'));
  t.equal(answers.size, 16 + 64 * 80, 'every request answered');
  t.same(other.slice(0, 5).map(([id, a]) => `${id}: ${a.status} ${a.body.toString()}`), [], 'each answer: 200, or 503 with body relay_full');
  t.ok(full.length > 0, `some hits found the relay full (${full.length} of ${answers.size}; ${ok.length} answered 200)`);

  t.ok(ok.length > 6, `and some fitted under load (${ok.length - 6})`);
  const s = await stats(d);
  t.same(s.threads?.map((th: { relay_bytes: number }) => th.relay_bytes), [0, 0], 'afterwards nothing waits in either relay');
  t.equal(s.rejected?.relay_full, full.length, '/stats rejected.relay_full = the 503s');
  t.equal(s.requests?.GET?.['503'], full.length, '/stats requests.GET.503 = the 503s');
  t.equal(s.requests?.GET?.['200'], ok.length, '/stats requests.GET.200 = the 200s');
  t.equal(await d.stop(), 0, 'exit 0');
  t.equal(d.logs.find((l) => l.msg === 'drained') === undefined, false, 'drained');

  const inFile = idsIn(dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens')));
  t.equal(inFile.length, ok.length, 'the file: one Line per 200');
  t.same([...inFile].sort(), [...ok].sort(), 'the file holds exactly the Lines answered 200');
  const refused = new Set(full);
  t.equal(inFile.filter((id) => refused.has(id)).length, 0, 'no Line answered 503 is in the file');

  const windows = readFileSync(join(d.dir, 'state', 'losses.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as { backend: string; flavor: string; count: number; reasons: Record<string, number>; command?: string });
  const relay = windows.filter((w) => w.backend === 'relay');
  t.same(windows.filter((w) => w.backend !== 'relay'), [], 'no other backend lost a Line');
  t.ok(relay.length >= 1, `a relay loss window (${relay.length})`);
  t.equal(relay.reduce((n, w) => n + w.count, 0), full.length, 'its count = the 503s');
  t.same(relay.map((w) => [w.flavor, Object.keys(w.reasons)]), relay.map(() => ['gr', ['relay_full']]), 'flavor gr, reason relay_full');
  // A refused Line reached no backend: neither a replay (it would produce
  // again the window's Lines Kafka has) nor a rebuild recovers it.
  t.same(relay.filter((w) => /scratchd (replay|rebuild)/.test(w.command ?? '')).map((w) => w.command), [],
    'no recovery command for Lines no backend ever had');
});

t.test('a Line bigger than maxRelayBytes still passes an empty relay: the relay is not full', async (t) => {
  const d = await startDaemon({ config: { threads: 1, limits: { maxBulkBytes: 512, maxRelayBytes: 1024 } } });
  t.teardown(() => d.stop());
  // A query within maxQueryBytes (8192) whose Line is over 1024 bytes.
  const conn = await connect(d.port);
  const [a] = await conn.send([{ path: `/track?id=big&pad=${'y'.repeat(1500)}`, headers: { host: 'gr.test' } }]);
  conn.close();
  t.equal(a!.status, 200, `answered 200 on an empty relay (got ${a!.status})`);
  t.equal(await d.stop(), 0);
  t.same(idsIn(dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'))), ['big'], 'and written');
});

t.test('a salt that cannot be written: one hashed IP for a visitor, whichever thread serves it', async (t) => {
  const stateDir = join(tempDir('scratchd-threads-tests-'), 'state');
  mkdirSync(stateDir);
  writeFileSync(join(stateDir, 'salts'), 'not a directory'); // every salt write fails: salts live in RAM only
  const d = await startDaemon({
    config: { threads: 4, stateDir, flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich: { ip: 'ip' }, privacy: { ip: 'hashed' } }] },
  });
  t.teardown(() => d.stop());
  // One connection each: they spread over the threads.
  for (let c = 0; c < 16; c++) {
    const conn = await connect(d.port);
    t.equal((await conn.send([{ path: `/track?id=${c}`, headers: { host: 'gr.test' } }]))[0]!.status, 200);
    conn.close();
  }
  t.equal(await d.stop(), 0);
  const ips = dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens')).map((l) => (JSON.parse(l) as { ip: string }).ip);
  t.equal(ips.length, 16);
  t.equal(new Set(ips).size, 1, `one hashed IP for 127.0.0.1 (${new Set(ips).size} seen)`);
});

/** Two configs for host h.test: A serves flavor `one` to https://a.example, B flavor `two` to https://b.example. */
const configs = {
  A: [{ name: 'one', hosts: ['h.test'], timeZone: 'UTC', cors: { origins: ['https://a.example'] } }],
  B: [{ name: 'two', hosts: ['h.test'], timeZone: 'UTC', cors: { origins: ['https://b.example'] } }],
};

t.test('SIGHUP under load (threads: 4): every request under one whole config, each connection sees every reload', async (t) => {
  const d = await startDaemon({ config: { threads: 4, flavors: configs.A } });
  t.teardown(() => d.stop());
  const order = ['B', 'A', 'B', 'A', 'B', 'A'] as const;

  interface Sent { id: string; sentAt: number; answeredAt: number; status: number; allowOrigin: string | undefined }
  const CONNECTIONS = 16;
  const sent: Sent[][] = Array.from({ length: CONNECTIONS }, () => []);
  const failures: string[] = [];
  let running = true;
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => connect(d.port)));
  const loops = conns.map(async (conn, c) => {
    for (let n = 0; running; n++) {
      const id = `${c}-${n}`;
      const sentAt = performance.now();
      try {
        const [a] = await conn.send([{ path: `/track?id=${id}`, headers: { host: 'h.test', origin: 'https://a.example' } }]);
        sent[c]!.push({ id, sentAt, answeredAt: performance.now(), status: a!.status, allowOrigin: a!.headers['access-control-allow-origin'] });
      } catch (err) {
        failures.push(`${id}: ${(err as Error).message}`);
        return;
      }
      await sleep(2); // steady, not flat out: two cores are shared
    }
  });

  // When each config was asked for (SIGHUP sent) and known in force (logged).
  const hupAt: number[] = [];
  const reloadedAt: number[] = [];
  // Every connection answered a few requests sent since `since`: it saw the config in force.
  const everyConnectionSince = (since: number) => until('every connection served under the config in force', () =>
    sent.every((list) => list.filter((s) => s.sentAt > since).length >= 10), 20_000);
  await everyConnectionSince(0);
  for (const [k, name] of order.entries()) {
    writeFileSync(join(d.dir, 'config.json'), JSON.stringify({ ...d.config, flavors: configs[name] }, null, 2));
    hupAt.push(performance.now());
    d.proc.kill('SIGHUP');
    await d.waitLog(() => d.logs.filter((l) => l.msg === 'config reloaded').length > k, 10_000);
    reloadedAt.push(performance.now());
    await everyConnectionSince(reloadedAt[k]!);
  }
  running = false;
  await Promise.all(loops);
  for (const conn of conns) conn.close();
  t.same(failures, [], 'no request failed');
  t.same(d.logs.filter((l) => l.level !== undefined && Number(l.level) >= 50).map((l) => l.msg), [], 'no error logged');
  const all = sent.flat();
  t.same(all.filter((s) => s.status !== 200).map((s) => `${s.id}: ${s.status}`).slice(0, 5), [], `every request answered 200 (${all.length})`);
  t.equal(await d.stop(), 0, 'exit 0');

  const day = dayOf(Date.now(), 'UTC');
  const one = idsIn(dayLines(join(d.dir, 'log'), 'one', day));
  const two = idsIn(dayLines(join(d.dir, 'log'), 'two', day));
  const flavorOf = new Map<string, string[]>();
  for (const id of one) flavorOf.set(id, [...(flavorOf.get(id) ?? []), 'one']);
  for (const id of two) flavorOf.set(id, [...(flavorOf.get(id) ?? []), 'two']);
  t.equal(flavorOf.size, all.length, 'every request has its Line');
  t.same([...flavorOf].filter(([, f]) => f.length !== 1).slice(0, 5), [], 'each Line in exactly one of the files');
  t.ok(one.length > 0 && two.length > 0, `Lines under both configs (one: ${one.length}, two: ${two.length})`);

  // Flavor one (config A) allows https://a.example; flavor two (B) does not:
  // a Line of one answered without the header, or of two with it, mixed them.
  const mixed = all.filter((s) => {
    const f = flavorOf.get(s.id)?.[0];
    return f === 'one' ? s.allowOrigin !== 'https://a.example' : s.allowOrigin !== undefined;
  });
  t.same(mixed.slice(0, 5).map((s) => `${s.id} in ${flavorOf.get(s.id)?.join()}, Access-Control-Allow-Origin: ${s.allowOrigin}`), [],
    'the answer\'s CORS header and the Line\'s flavor come from one config');

  // The config in force is known between a reload's log line and the next
  // SIGHUP: a request sent then and answered before the next SIGHUP was
  // served under it, whichever thread took it.
  const expectedOf = (s: Sent): string | null => {
    if (s.answeredAt < hupAt[0]!) return 'one';
    for (let k = 0; k < order.length; k++) {
      if (s.sentAt > reloadedAt[k]! && s.answeredAt < (hupAt[k + 1] ?? Infinity)) return order[k] === 'A' ? 'one' : 'two';
    }
    return null; // in flight across a reload: either
  };
  const late = all.filter((s) => expectedOf(s) !== null && flavorOf.get(s.id)?.[0] !== expectedOf(s));
  t.same(late.slice(0, 5).map((s) => `${s.id}: ${flavorOf.get(s.id)?.[0]}, expected ${expectedOf(s)}`), [],
    'once "config reloaded" is logged, every thread serves the new config');

  // Each connection stays on one thread: its Lines switch flavor exactly at
  // each reload, so every thread that served a connection took every reload.
  const runs = sent.map((list) => {
    const flavors = list.map((s) => flavorOf.get(s.id)?.[0]);
    return flavors.filter((f, i) => i === 0 || f !== flavors[i - 1]).join(',');
  });
  const expectedRuns = ['one', ...order.map((n) => (n === 'A' ? 'one' : 'two'))].join(',');
  t.same(runs.map((r, c) => [c, r]).filter(([, r]) => r !== expectedRuns), [], `each connection: ${expectedRuns}`);
});
