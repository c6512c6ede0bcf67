/**
 * `scratchd rebuild` of a day two instances wrote (issue 27): both produce
 * to one topic; the rebuild is the union of their day files, each Line once,
 * in timestamp order (not the topic's);
 * `--instance a` rebuilds instance a's file byte for byte, under its name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { consume } from '../helpers/consume.js';
import { startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { runId } from '../helpers/lines.js';
import { cli } from '../helpers/recovery.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

t.test('rebuild of a day two instances wrote: the union in time order; --instance a: a\'s file byte for byte', async (t) => {
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
  // The topic's order is not the order of time: a serves the odd minutes
  // first, then b the even ones before them; then both at about the same
  // instants (the test clock moves on with real time from each jump).
  const hit = async (instance: string, id: number, at: number): Promise<void> => {
    const d = daemons[instance]!;
    await d.setClock(at);
    t.equal((await request(d.port, `/track?id=${id}`, { host: 'gr.test' })).status, 200);
  };
  for (let i = 0; i < 15; i++) await hit('a', i, start + (2 * i + 1) * 60_000);
  for (let i = 0; i < 15; i++) await hit('b', 15 + i, start + 2 * i * 60_000);
  for (let i = 0; i < 5; i++) {
    await hit('b', 30 + 2 * i, start + (40 + i) * 60_000);
    await hit('a', 31 + 2 * i, start + (40 + i) * 60_000);
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
  const rebuilt = readFileSync(join(all, 'gr', 'gr-a-2026-03-29.log'), 'utf8');
  // Each Line's time is its message's timestamp (its arrival: the files do not hold it).
  const timeOf = new Map((await consume(kafka.bootstrap, topic, { count: 40 }))
    .map((m) => [(JSON.parse(m.value.toString()) as { id: string }).id, m.timestamp]));
  // Each file is in its instance's order of arrival; merged by time, a tie to a.
  const timed = (instance: string) => fileOf(instance).toString().split('\n').filter((l) => l !== '')
    .map((l) => ({ l, at: timeOf.get((JSON.parse(l) as { id: string }).id)! }));
  const merged = [...timed('a'), ...timed('b')].sort((x, y) => x.at - y.at).map((x) => x.l);
  t.equal(merged.length, 40, 'both files hold every Line of the day');
  t.equal(rebuilt, merged.join('\n') + '\n', 'the rebuild: both instances\' files merged by time, each Line once, byte for byte');
});
