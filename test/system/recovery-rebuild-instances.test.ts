/**
 * `scratchd rebuild` of a day two instances wrote (issue 27): both produce
 * to one topic; the rebuild is the union of their day files, each Line once;
 * `--instance a` rebuilds instance a's file byte for byte, under its name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { runId } from '../helpers/lines.js';
import { cli } from '../helpers/recovery.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

t.test('rebuild of a day two instances wrote: the union; --instance a: a\'s file byte for byte', async (t) => {
  const topic = `recovery.instances.gr.${runId}`;
  await kafka.createTopic(topic, 1, { 'retention.ms': '-1' });
  const start = Date.parse('2026-03-28T22:30:00Z'); // 00:30 on the 29th in Athens
  const daemons: Record<string, Daemon> = {};
  for (const instance of ['a', 'b']) {
    daemons[instance] = await startDaemon({
      clock: start,
      config: {
        instance,
        flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', topic }],
        backends: {
          file: { name: '{flavor}-{instance}-{day}.log' },
          kafka: { enabled: true, rdkafka: { 'metadata.broker.list': kafka.bootstrap } },
        },
      },
    });
    t.teardown(() => daemons[instance]!.stop());
  }
  for (let i = 0; i < 40; i++) {
    const d = daemons[i % 3 === 0 ? 'b' : 'a']!;
    await d.setClock(start + i * 60_000);
    t.equal((await request(d.port, `/track?id=${i}`, { host: 'gr.test' })).status, 200);
  }
  for (const d of Object.values(daemons)) t.equal(await d.stop(), 0, 'drained into both backends');
  const fileOf = (instance: string) => readFileSync(join(daemons[instance]!.dir, 'log', 'gr', `gr-${instance}-2026-03-29.log`));

  const config = join(daemons.a!.dir, 'config.json');
  const out = tempDir('scratchd-instances-rebuilt-');
  const one = await cli(['rebuild', '--config', config, '--flavor', 'gr', '--day', '2026-03-29', '--out', out, '--instance', 'a']);
  t.equal(one.code, 0, one.stderr);
  const rebuiltA = join(out, 'gr', 'gr-a-2026-03-29.log');
  t.same(readFileSync(rebuiltA), fileOf('a'), "--instance a: a's file, byte for byte");
  t.match(JSON.parse(readFileSync(`${rebuiltA}.done`, 'utf8')), { instance: 'a' });

  const all = tempDir('scratchd-instances-rebuilt-');
  const union = await cli(['rebuild', '--config', config, '--flavor', 'gr', '--day', '2026-03-29', '--out', all]);
  t.equal(union.code, 0, union.stderr);
  const lines = readFileSync(join(all, 'gr', 'gr-a-2026-03-29.log'), 'utf8').split('\n').filter((l) => l !== '');
  const both = [fileOf('a'), fileOf('b')].flatMap((b) => b.toString().split('\n').filter((l) => l !== ''));
  t.equal(lines.length, 40, 'every Line of the day');
  t.same([...lines].sort(), [...both].sort(), 'the union of both instances\' files, each Line once');
  // One partition is read in its own order (the brokers' order of the two producers' batches): each instance's Lines keep theirs.
  const mine = new Set(fileOf('b').toString().split('\n').filter((l) => l !== ''));
  t.same(lines.filter((l) => mine.has(l)).join('\n') + '\n', fileOf('b').toString(), "b's Lines in b's order");
});
