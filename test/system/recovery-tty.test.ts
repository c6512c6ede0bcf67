/**
 * On a terminal, replay and rebuild show a progress bar (Lines, rate, ETA)
 * before their summary; `script` gives them one. Off a terminal (every other
 * recovery test) they print the summary alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { encodeEntries } from '../../src/file/day-index.js';
import { mainJs, tempDir } from '../helpers/daemon.js';
import { startKafka } from '../helpers/kafka.js';
import { runId } from '../helpers/lines.js';

if (spawnSync('script', ['--version']).status !== 0) throw new Error('this test needs script(1) from bsdutils: scripts/test-all.sh installs it before the suite');
const kafka = await startKafka();
t.teardown(() => kafka.stop());

/** `node dist/main.js ARGS` on a pseudo-terminal; what it wrote there. */
function onTerminal(args: string): { status: number | null; out: string } {
  // `env -u`: without tap's process-info hooks (test/helpers/without-tap-hooks.ts).
  const r = spawnSync('script', ['-qec', `env -u NODE_OPTIONS ${process.execPath} ${mainJs} ${args}`, '/dev/null'],
    { encoding: 'utf8' });
  return { status: r.status, out: r.stdout };
}

t.test('progress bars on a terminal', async (t) => {
  const dir = tempDir();
  const topic = `recovery.tty.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  const T = Date.parse('2026-11-29T10:00:00Z');
  mkdirSync(join(dir, 'log', 'gr'), { recursive: true });
  let text = '';
  const entries = [];
  for (let b = 0; b < 200; b++) {
    entries.push({ time: T + b * 10, offset: Buffer.byteLength(text) });
    for (let i = 0; i < 10; i++) text += `{"id":"${b}.${i}"}\n`;
  }
  writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-29.log'), text);
  writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-29.log.idx'), encodeEntries(entries));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', topic }],
    stateDir: join(dir, 'state'),
    backends: { file: { dir: join(dir, 'log') }, kafka: { rdkafka: { 'metadata.broker.list': kafka.bootstrap } } },
  }));

  const replay = onTerminal(`replay --config ${config} --flavor gr --from 2026-11-29T09:00:00Z --to 2026-11-29T11:00:00Z --rate 2000`);
  t.equal(replay.status, 0, 'replay exit 0');
  t.match(replay.out, /replay gr \[[█░]+\] 100% \| 2000 Lines \| \d+ Lines\/s \| ETA \d+s/, 'a bar with Lines, rate and ETA');
  t.match(replay.out, /2000 Lines produced, 2000 delivered, 0 failed\r?\n$/, 'then the summary');

  const rebuild = onTerminal(`rebuild --config ${config} --flavor gr --day 2026-11-29 --out ${join(dir, 'out')}`);
  t.equal(rebuild.status, 0, 'rebuild exit 0');
  t.match(rebuild.out, /rebuild gr 2026-11-29 \[[█░]+\] 100% \| 2000 Lines/);
  t.match(rebuild.out, /2000 Lines written to .*\r?\n$/);
});
