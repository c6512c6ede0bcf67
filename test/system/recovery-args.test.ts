/**
 * Recovery commands given something they cannot do: a one-line error on
 * stderr, exit 1, and nothing produced to the topic or written.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { encodeEntries } from '../../src/file/day-index.js';
import { consume } from '../helpers/consume.js';
import { tempDir } from '../helpers/daemon.js';
import { startKafka } from '../helpers/kafka.js';
import { freePort } from '../helpers/wait.js';
import { runId } from '../helpers/lines.js';
import { cli } from '../helpers/recovery.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

const dir = tempDir();
const topic = `recovery.args.${runId}`;
await kafka.createTopic(topic, 1);
// One day file of three Lines in one batch, with its index.
const T = Date.parse('2026-11-29T10:00:00Z');
mkdirSync(join(dir, 'log', 'gr'), { recursive: true });
writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-29.log'), '{"id":"1"}\n{"id":"2"}\n{"id":"3"}\n');
writeFileSync(join(dir, 'log', 'gr', 'gr-2026-11-29.log.idx'), encodeEntries([{ time: T, offset: 0 }]));

function config(name: string, bootstrap: string, stateDir = join(dir, 'state')): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    flavors: [{ name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', topic }],
    stateDir,
    backends: { file: { dir: join(dir, 'log') }, kafka: { rdkafka: { 'metadata.broker.list': bootstrap } } },
  }));
  return file;
}
const good = config('good', kafka.bootstrap);
const unreachable = config('unreachable', `127.0.0.1:${await freePort()}`);
// A stateDir below a file: nothing can be kept there (root ignores permissions, not this).
const noState = config('no-state', kafka.bootstrap, join(dir, 'good.json', 'state'));
const range = ['--from', '2026-11-29T09:00:00Z', '--to', '2026-11-29T11:00:00Z'];
const out = join(dir, 'out');

const cases: [string, string[], RegExp][] = [
  ['replay: unknown flavor', ['replay', '--config', good, '--flavor', 'xx', ...range], /unknown flavor "xx" \(the config has gr\)/],
  ['replay: from after to', ['replay', '--config', good, '--flavor', 'gr', '--from', '2026-11-29T11:00:00Z', '--to', '2026-11-29T09:00:00Z'], /--from .* is after --to/],
  ['replay: a time without a zone', ['replay', '--config', good, '--flavor', 'gr', '--from', '2026-11-29T09:00:00', '--to', '2026-11-29T11:00:00Z'], /not an ISO 8601 time with a zone/],
  ['replay: a day that does not exist', ['replay', '--config', good, '--flavor', 'gr', '--from', '2026-02-30T10:00:00Z', '--to', '2026-11-29T11:00:00Z'], /--from 2026-02-30T10:00:00Z: not an ISO 8601 time with a zone .* every field in range/],
  ['replay: ms beyond a Date', ['replay', '--config', good, '--flavor', 'gr', '--from', '2026-11-29T09:00:00Z', '--to', '99999999999999999'], /--to 99999999999999999: .* ms since the epoch up to 8640000000000000/],
  ['replay: no day file in the range', ['replay', '--config', good, '--flavor', 'gr', '--from', '2026-06-01T00:00:00Z', '--to', '2026-06-02T00:00:00Z'], /no Lines of gr between/],
  ['replay: no such window', ['replay', '--config', good, '--window', 'kafka-gr-nope'], /no loss window kafka-gr-nope/],
  ['replay: --rate 0', ['replay', '--config', good, '--flavor', 'gr', ...range, '--rate', '0'], /--rate 0: a whole number/],
  ['replay: unknown option', ['replay', '--config', good, '--flavour', 'gr'], /Unknown option '--flavour'/],
  ['replay: broker unreachable', ['replay', '--config', unreachable, '--flavor', 'gr', ...range], /cannot reach Kafka at 127\.0\.0\.1:\d+/],
  ['replay: stateDir unusable', ['replay', '--config', noState, '--flavor', 'gr', ...range], /ENOTDIR: not a directory, open '.*good\.json\/state\/replay-gr-/],
  ['rebuild: unknown flavor', ['rebuild', '--config', good, '--flavor', 'xx', '--day', '2026-11-29', '--out', out], /unknown flavor "xx"/],
  ['rebuild: no such day', ['rebuild', '--config', good, '--flavor', 'gr', '--day', '2026-02-30', '--out', out], /--day 2026-02-30: not a date/],
  ['rebuild: a day without Lines', ['rebuild', '--config', good, '--flavor', 'gr', '--day', '2026-01-01', '--out', out], /no Lines of gr on 2026-01-01 .* in topic /],
  ['rebuild: a day not over yet', ['rebuild', '--config', good, '--flavor', 'gr', '--day', dayOf(Date.now(), 'Europe/Athens'), '--out', out], /is not over yet in Europe\/Athens \(it ends .*\): a rebuild now would write part of it as the whole day/],
  ['rebuild: into the live directory', ['rebuild', '--config', good, '--flavor', 'gr', '--day', '2026-11-29', '--out', join(dir, 'log')], /is the live log directory/],
  ['rebuild: broker unreachable', ['rebuild', '--config', unreachable, '--flavor', 'gr', '--day', '2026-11-29', '--out', out], /cannot reach Kafka at 127\.0\.0\.1:\d+/],
  ['rebuild: missing --out', ['rebuild', '--config', good, '--flavor', 'gr', '--day', '2026-11-29'], /--flavor, --day and --out are required/],
];

// Each case is its own process and most wait on nothing but a timeout (the
// unreachable broker): four at a time.
t.test('each refused with one line', { jobs: 4 }, async (t) => {
  for (const [name, args, message] of cases) {
    t.test(name, async (t) => {
      const r = await cli(args);
      t.equal(r.code, 1, 'exit 1');
      t.equal(r.stdout, '', 'nothing on stdout');
      t.equal(r.stderr.split('\n').length, 2, `one line on stderr: ${r.stderr}`);
      t.match(r.stderr, new RegExp(`^scratchd ${args[0]}: .*${message.source}`));
    });
  }
});

t.test('nothing was produced or written', async (t) => {
  t.same(await consume(kafka.bootstrap, topic, { timeoutMs: 10_000 }), [], `topic ${topic} is empty`);
  t.notOk(existsSync(out) && readdirSync(out).length > 0, 'no rebuilt file');
  t.notOk(existsSync(join(dir, 'state')) && readdirSync(join(dir, 'state')).length > 0, 'no replay progress');
});
