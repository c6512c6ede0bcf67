/**
 * librdkafka gets every setting in its own scope: topic-level properties
 * (message.timeout.ms, acks, ...) reach it only as node-rdkafka's topic
 * config. Proved with librdkafka's own conf dump (`debug: 'conf'`) of the
 * producer the backend builds; no broker is needed (the dump is made when
 * the client is created, before any connection).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { KafkaBackend } from '../../src/kafka/backend.js';
import { rdkafkaConfigError } from '../../src/kafka/settings.js';
import { byScope, TOPIC_ONLY } from '../../src/kafka/scope.js';
import { kafkaConfig } from '../helpers/lines.js';
import { until } from '../helpers/wait.js';

const require = createRequire(import.meta.url);

/** Property names of one "## ... configuration properties" table of CONFIGURATION.md. */
function table(md: string, heading: string): Set<string> {
  const from = md.indexOf(heading);
  const rest = md.slice(from + heading.length);
  const end = rest.search(/\n## |\n### /);
  const names = new Set<string>();
  for (const row of (end < 0 ? rest : rest.slice(0, end)).split('\n')) {
    const m = /^([a-z][a-z0-9._]*)\s*\|/.exec(row);
    if (m !== null) names.add(m[1]!);
  }
  return names;
}

t.test('TOPIC_ONLY is librdkafka\'s topic table less what its global table has too', async (t) => {
  const md = readFileSync(join(dirname(require.resolve('node-rdkafka/package.json')), 'deps/librdkafka/CONFIGURATION.md'), 'utf8');
  const global = table(md, '## Global configuration properties');
  const topic = table(md, '## Topic configuration properties');
  t.ok(global.size > 100 && topic.size > 10, `${global.size} global, ${topic.size} topic properties read`);
  t.same([...TOPIC_ONLY].sort(), [...topic].filter((p) => !global.has(p)).sort());
});

t.test('byScope splits by that table', async (t) => {
  t.same(byScope({ acks: 'all', 'linger.ms': 5, 'message.timeout.ms': 0, 'compression.type': 'lz4' }),
    { global: { 'linger.ms': 5, 'compression.type': 'lz4' }, topic: { acks: 'all', 'message.timeout.ms': 0 } });
});

/** librdkafka's conf dump of the producer a KafkaBackend builds with `rdkafka`. */
async function confDump(rdkafka: Record<string, string | number | boolean>): Promise<Map<string, string>> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(String((JSON.parse(l) as { msg: string }).msg));
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  // Nothing listens on port 1: the connect attempt fails, the dump is made anyway.
  const k = new KafkaBackend(kafkaConfig('127.0.0.1:1', { flushTimeoutMs: 100 }, { debug: 'conf', ...rdkafka }), log);
  await k.start();
  // The dump: the global config, then the default topic config (which ends with message.timeout.ms' neighbours).
  await until('the conf dump', () => lines.some((l) => /request\.required\.acks/.test(l)) &&
    lines.some((l) => /\]:\s+message\.timeout\.ms = /.test(l)), 10_000).catch(() => {});
  await k.close();
  const conf = new Map<string, string>();
  for (const l of lines) {
    const m = /librdkafka: .*?\]:\s+(\S+) = (.*)$/.exec(l);
    if (m !== null && !conf.has(m[1]!)) conf.set(m[1]!, m[2]!);
  }
  return conf;
}

t.test('the defaults reach librdkafka: no message timeout, acks from all in-sync replicas', async (t) => {
  const conf = await confDump({});
  t.equal(conf.get('message.timeout.ms'), '0', 'message.timeout.ms = 0');
  t.equal(conf.get('request.required.acks'), '-1', 'request.required.acks = -1 (all)');
  t.equal(conf.get('queue.buffering.max.ms'), '5', 'a global default is there too (linger.ms is its alias)');
  t.equal(conf.get('enable.idempotence'), 'true');
});

t.test('an operator\'s topic-level settings reach librdkafka too', async (t) => {
  // (acks stays all: librdkafka requires it with enable.idempotence.)
  const conf = await confDump({ 'message.timeout.ms': 1234, 'request.timeout.ms': 4321, partitioner: 'murmur2_random' });
  t.equal(conf.get('message.timeout.ms'), '1234');
  t.equal(conf.get('request.timeout.ms'), '4321');
  t.equal(conf.get('partitioner'), 'murmur2_random');
});

t.test('a topic-level setting librdkafka refuses is refused at --check and start', async (t) => {
  t.match(rdkafkaConfigError({ 'message.timeout.ms': -5 }), /outside allowed range/);
  t.match(rdkafkaConfigError({ acks: 'sometimes' }), /request.required.acks/);
});
