// Body memory is bounded by the bytes received (issue 30 hostile 1): many
// connections each sending `1\r\na\r\n` thousands of times and never the last
// chunk once cost a buffer per piece (a remote crash). Now each connection
// holds at most its body's bytes, rounded up, and limits.maxBodyBytesInFlight
// bounds them all: beyond it a POST gets 503 busy and a close.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { sleep, until } from '../helpers/wait.js';
import { rssKiB, stats } from '../helpers/watch.js';

const head = 'POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n';

interface Trickler {
  sock: net.Socket;
  /** Everything the server sent. */
  text: string;
  /** The server closed the connection. */
  closed: boolean;
}

/** `connections` sockets, each sending the head and `pieces` one-byte chunks, never the last chunk. */
async function trickle(d: Daemon, connections: number, pieces: number): Promise<Trickler[]> {
  const body = Buffer.from(head + '1\r\na\r\n'.repeat(pieces));
  const all = await Promise.all(Array.from({ length: connections }, () => new Promise<Trickler>((resolve) => {
    const tr: Trickler = { sock: net.connect(d.port, '127.0.0.1'), text: '', closed: false };
    tr.sock.on('connect', () => tr.sock.write(body, () => resolve(tr)));
    tr.sock.on('data', (c) => {
      tr.text += c.toString('latin1');
    });
    tr.sock.on('error', () => resolve(tr)); // a reset after a 503
    tr.sock.on('close', () => {
      tr.closed = true;
      resolve(tr);
    });
  })));
  return all;
}

/** The daemon's CPU time so far, in clock ticks (utime + stime). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Every byte sent has been read: the daemon is idle again (its CPU time all but stops). */
async function settled(d: Daemon): Promise<void> {
  let last = cpuTicks(d.proc.pid!);
  await until('the daemon idle again', async () => {
    await sleep(300);
    const now = cpuTicks(d.proc.pid!);
    const idle = now - last <= 2;
    last = now;
    return idle;
  });
}

t.test('thousands of one-byte chunks on many connections: memory follows bytes, not pieces', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  // Warm up, so the baseline includes what the first POST loads.
  t.equal((await request(d.port, '/track', { host: 'gr.test', method: 'POST', body: 'warm=1', headers: { 'content-type': 'text/plain' } })).status, 204);
  const base = rssKiB(d.proc.pid!);
  // 60 × 10 000 pieces: 600 000 onData calls, 600 KB of body in all.
  const socks = await trickle(d, 60, 10_000);
  await settled(d);
  const held = rssKiB(d.proc.pid!);
  t.ok(held - base < 40 * 1024, `VmRSS grew ${held - base} KiB while 60 bodies of 10 000 pieces are held (< 40 MiB)`);
  t.same(socks.filter((s) => s.text !== '' || s.closed).length, 0, 'all held, unanswered: the bodies are not finished');
  t.equal((await request(d.port, '/health')).status, 200, '/health answers meanwhile');
  for (const s of socks) s.sock.destroy();
  await settled(d);
  const after = rssKiB(d.proc.pid!);
  t.ok(after - base < 40 * 1024, `VmRSS after they closed: ${after - base} KiB over the baseline (< 40 MiB)`);
});

t.test('limits.maxBodyBytesInFlight: past it, 503 busy and close, counted; the budget returns', async (t) => {
  const maxBodyBytes = 4096;
  const inFlight = 65536;
  const d = await startDaemon({ config: { limits: { maxBodyBytes, maxBodyBytesInFlight: inFlight } } });
  t.teardown(() => d.stop());
  const before = await stats(d);
  // Each body grows to maxBodyBytes' worth (3000 bytes received): at most
  // 16 fit in the budget at once.
  const socks = await trickle(d, 40, 3000);
  await settled(d);
  // A close with the client's bytes still unread by the server can reset
  // the connection before the client reads the 503: closed, no text.
  const busy = socks.filter((s) => s.closed);
  const answered = busy.filter((s) => s.text !== '');
  const held = socks.filter((s) => s.text === '' && !s.closed);
  t.equal(busy.length + held.length, 40, 'each either refused and closed, or held, unanswered');
  t.ok(held.length >= 1 && held.length <= inFlight / maxBodyBytes, `${held.length} held, within the budget`);
  t.ok(answered.length > 0 && answered.every((s) => /^HTTP\/1\.1 503 [^]*\r\n\r\nbusy\n$/.test(s.text)), `503 busy (${answered.length} of ${busy.length} read it before the close)`);
  const after = await stats(d);
  t.equal(after.rejected.busy! - before.rejected.busy!, busy.length, 'counted as rejected.busy');
  const answered503 = (after.requests.POST?.['503'] ?? 0) - (before.requests.POST?.['503'] ?? 0);
  t.ok(answered503 >= answered.length && answered503 <= busy.length, `answered 503: ${answered503}, counted as POST 503`);

  // Once the held ones go, their bytes are free for others.
  for (const s of socks) s.sock.destroy();
  await settled(d);
  // A body over maxBodyBytes in one-byte pieces: 413, as by Content-Length.
  const [big] = await trickle(d, 1, maxBodyBytes + 1);
  await until('413', () => /^HTTP\/1\.1 413 /.test(big!.text));
  big!.sock.destroy();
  const again = await trickle(d, held.length, 3000);
  await settled(d);
  t.same(again.filter((s) => s.text !== '' || s.closed).length, 0, `${held.length} new bodies held: the budget came back`);
  for (const s of again) s.sock.destroy();
});
