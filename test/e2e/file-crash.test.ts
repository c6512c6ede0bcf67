// A process crash loses no answered Line of the file backend beyond the
// event-loop turn it died in (issue 34, section 3). Each turn's Lines reach
// write(2) in that turn's check phase, before the loop polls again; the
// clients send as browsers and HAProxy do, one request at a time per
// connection, the next once the last is answered, so a request is always
// answered in a later turn than the one before it on its connection. A
// SIGKILL the moment the last answer arrives may then find only each
// connection's last Line missing (answered in the turn the process died in,
// when the kill beat that turn's write), never an earlier one. Gathering Lines
// over time (the 5 ms this replaced) lost many per connection.
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

t.test('SIGKILL the moment the last of 3000 answers arrives: every answered Line is in the day file, but for the last turn', async (t) => {
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
  const lastOfEach = (i: number) => i % per === per - 1;
  t.same(lost.filter((i) => !lastOfEach(i)), [], `no Line answered before the last turn is lost (lost: ${lost.length}, at most ${CONNECTIONS} may be)`);
});
