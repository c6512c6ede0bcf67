/**
 * `scratchd rebuild` makes a deleted day file again from its Kafka topic:
 * byte for byte with one partition, across a DST change (Europe/Athens
 * 2026-03-29 has 23 hours), and ordered by arrival time with several
 * partitions. The daemon runs on the test clock (test/helpers/clock.mjs) to
 * give Lines those arrival times.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { decodeEntries } from '../../src/file/day-index.js';
import { dayOf } from '../../src/day.js';
import { startDaemon, tempDir } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { runId } from '../helpers/lines.js';
import { cli } from '../helpers/recovery.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

t.test('a deleted day file rebuilt from Kafka, across the spring DST change: byte-identical', async (t) => {
  const topics = { gr: `recovery.rebuild.gr.${runId}`, tr: `recovery.rebuild.tr.${runId}` };
  // Old timestamps: without retention.ms=-1 the broker would delete them as expired.
  await kafka.createTopic(topics.gr, 1, { 'retention.ms': '-1' });
  await kafka.createTopic(topics.tr, 3, { 'retention.ms': '-1' });
  const d = await startDaemon({
    clock: Date.parse('2026-03-28T21:59:00Z'),
    config: {
      flavors: [
        { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', topic: topics.gr },
        { name: 'tr', hosts: ['tr.test'], timeZone: 'Europe/Istanbul', topic: topics.tr, enrich: { time: 't' } },
      ],
      backends: {
        kafka: {
          enabled: true,
          // Null keys to a random partition per message, so tr's Lines spread over its three.
          rdkafka: { 'metadata.broker.list': kafka.bootstrap, 'sticky.partitioning.linger.ms': 0 },
        },
      },
    },
  });
  t.teardown(() => d.stop());
  // Lines before, at and after Athens midnight, at the 03:00 → 04:00 jump
  // (01:00Z), at midday, at the day's last instant and after it.
  const moments = ['2026-03-28T21:59:58Z', '2026-03-28T21:59:59.990Z', '2026-03-29T00:59:59.990Z', '2026-03-29T09:00:00Z',
    '2026-03-29T20:59:59.990Z', '2026-03-29T21:00:01Z'];
  let id = 0;
  for (const m of moments) {
    await d.setClock(Date.parse(m));
    for (let i = 0; i < 10; i++) {
      const [a, b] = await Promise.all([
        request(d.port, `/track?id=${id}&pad=${'x'.repeat(id % 7)}`, { host: 'gr.test' }),
        request(d.port, `/track?id=${id}`, { host: 'tr.test' }),
      ]);
      if (a.status !== 200 || b.status !== 200) t.fail(`id ${id}: ${a.status} ${b.status}`);
      id++;
    }
  }
  t.equal(await d.stop(), 0, 'drained: every Line is in both backends');

  const out = tempDir();
  const config = join(d.dir, 'config.json');
  const live = join(d.dir, 'log');
  const days = ['2026-03-28', '2026-03-29', '2026-03-30'];
  for (const day of days) {
    const file = join(live, 'gr', `gr-${day}.log`);
    t.ok(existsSync(file), `the daemon wrote ${file}`);
    const original = readFileSync(file);
    rmSync(file);
    const r = await cli(['rebuild', '--config', config, '--flavor', 'gr', '--day', day, '--out', out]);
    t.equal(r.code, 0, `rebuild gr ${day}: ${r.stderr}`);
    const lines = original.toString().split('\n').length - 1;
    t.match(r.stdout, new RegExp(`${lines} Lines written to `));
    const rebuilt = join(out, 'gr', `gr-${day}.log`);
    t.ok(readFileSync(rebuilt).equals(original), `${day}: ${lines} Lines, byte-identical to the deleted file`);
    const done = JSON.parse(readFileSync(`${rebuilt}.done`, 'utf8')) as Record<string, unknown>;
    t.match(done, {
      flavor: 'gr', day, lines, bytes: original.length, version: '0.1.0',
      sha256: createHash('sha256').update(original).digest('hex'),
    }, 'manifest');
    const entries = decodeEntries(readFileSync(`${rebuilt}.idx`));
    t.equal(entries[0]?.offset, 0, 'the index starts at the first Line');
    t.ok(entries.every((e) => dayOf(e.time, 'Europe/Athens') === day), 'every indexed time is in the day, in Athens');
  }
  const idsOf = (day: string): number[] => readFileSync(join(out, 'gr', `gr-${day}.log`), 'utf8').split('\n')
    .filter((l) => l !== '').map((l) => Number((JSON.parse(l) as { id: string }).id));
  const dst = idsOf('2026-03-29');
  t.ok([...Array(20).keys()].every((i) => dst.includes(20 + i)), 'the 23-hour day holds the Lines on both sides of its 03:00 → 04:00 jump');
  t.same(days.flatMap(idsOf).sort((a, b) => a - b), [...Array(id).keys()], 'the three days hold every gr Line once');

  // Several partitions: the same Lines, ordered by arrival time.
  const trFile = join(live, 'tr', 'tr-2026-03-29.log');
  const trOriginal = readFileSync(trFile, 'utf8');
  rmSync(trFile);
  const r = await cli(['rebuild', '--config', config, '--flavor', 'tr', '--day', '2026-03-29', '--out', out]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /\(3 partition\(s\)\)/);
  const trRebuilt = readFileSync(join(out, 'tr', 'tr-2026-03-29.log'), 'utf8');
  const sorted = (s: string): string[] => s.split('\n').filter((l) => l !== '').sort();
  t.same(sorted(trRebuilt), sorted(trOriginal), 'tr: the same Lines');
  const times = trRebuilt.split('\n').filter((l) => l !== '').map((l) => Date.parse((JSON.parse(l) as { t: string }).t));
  t.same(times, [...times].sort((a, b) => a - b), 'tr: ordered by arrival time');

  const again = await cli(['rebuild', '--config', config, '--flavor', 'gr', '--day', '2026-03-29', '--out', out]);
  t.equal(again.code, 1, 'never overwrites a rebuilt file');
  t.match(again.stderr, /exists; remove it or choose another --out\n$/);
});
