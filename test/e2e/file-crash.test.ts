// A process crash loses no answered Line of the file backend beyond those
// still on their way to write(2) (issue 34, section 3; issue 24's relay).
// A serving thread answers, then posts its turn's Lines to the main thread
// (the relay); the main thread writes each turn's Lines in that turn's check
// phase. The clients send as browsers and HAProxy do, one request at a time
// per connection, the next once the last is answered. A SIGKILL the moment
// the last answer arrives may then find, per connection, only its last Lines
// missing, those still in the relay or the main thread's last turn: never a
// Line answered before one that was written (no hole), and never more than
// the relays hold (limits.maxRelayBytes per thread).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startDaemon } from '../helpers/daemon.js';

const LINES = 3000;
const CONNECTIONS = 4;

/** Send LINES pipelined GETs over CONNECTIONS sockets; SIGKILL the daemon the moment the last 200 arrives. */
function burstThenKill(port: number, kill: () => void): Promise<number> {
  return new Promise((resolve, reject) => {
    let answered = 0;
    let killed = false;
    const per = LINES / CONNECTIONS;
    for (let c = 0; c < CONNECTIONS; c++) {
      const sock = net.connect(port, '127.0.0.1');
      // One request at a time per connection, the next once the last is answered, as a browser or HAProxy sends.
      let sent = 0;
      const next = () => {
        if (sent < per) sock.write(`GET /track?i=${c * per + sent++} HTTP/1.1\r\nHost: gr.test\r\n\r\n`);
      };
      sock.on('connect', next);
      let tail = '';
      sock.on('data', (chunk: Buffer) => {
        // Count status lines, also when one is split across reads.
        const text = tail + chunk.toString('latin1');
        let at = 0;
        for (let i = text.indexOf('HTTP/1.1 200', at); i !== -1; i = text.indexOf('HTTP/1.1 200', at)) {
          answered++;
          at = i + 12;
          next();
        }
        tail = text.slice(Math.max(at, text.length - 11));
        if (answered === LINES && !killed) {
          killed = true;
          kill();
          resolve(answered);
        }
      });
      sock.on('error', () => {}); // the kill resets every socket
      sock.on('close', () => {
        if (!killed && answered < LINES) reject(new Error(`a connection closed with ${answered} answers`));
      });
    }
  });
}

t.test('SIGKILL the moment the last of 3000 answers arrives: every answered Line is in the day file, but for those on their way to it', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop('SIGKILL'));
  const answered = await burstThenKill(d.port, () => d.proc.kill('SIGKILL'));
  await d.exited;
  t.equal(answered, LINES);
  const dir = join(d.dir, 'log', 'gr');
  const seen = new Set<number>();
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (!name.endsWith('.log')) continue;
    const text = readFileSync(join(dir, name), 'utf8');
    for (const l of text.split('\n').slice(0, -1)) seen.add(Number((JSON.parse(l) as { i: string }).i));
  }
  const per = LINES / CONNECTIONS;
  const lost = [...Array(LINES).keys()].filter((i) => !seen.has(i));
  // A hole: a Line lost while a later one of its connection was written.
  const holes = lost.filter((i) => { const c = Math.floor(i / per); return [...seen].some((j) => j > i && Math.floor(j / per) === c); });
  t.same(holes, [], `only each connection's last Lines are lost, those on their way to the file (lost: ${lost.length})`);
  // The relays' bound: 16 MiB per thread by default, far above these ~20-byte Lines.
  t.ok(lost.length < LINES, `lost ${lost.length} of ${LINES}: the Lines written are every Line answered before them`);
});
