// Nothing raw leaks (issue 26): with privacy.ip "masked", a run through a
// Kafka outage (Lines spilled to the spool, then drained) leaves the client's
// raw address in no day file, spool segment, Kafka message (value or header)
// or log line, while every Line reaches both backends with the masked one.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { consume } from '../helpers/consume.js';
import { startKafka } from '../helpers/kafka.js';
import { startKafkaDaemon, stats, waitFor } from '../helpers/kafka-daemon.js';
import { request } from '../helpers/http.js';
import { segments, spoolDir } from '../helpers/kafka-spool.js';

const RAW = '127.0.0.1';

t.test('masked IPs through a Kafka outage: no raw address anywhere', async (t) => {
  const kafka = await startKafka({ owned: true });
  t.teardown(() => kafka.stop());
  const dir = spoolDir();
  const d = await startKafkaDaemon(kafka.bootstrap, {
    enrich: { ip: 'ip', userAgent: 'ua' },
    flavor: { privacy: { ip: 'masked', visitorId: 'vid' } },
    kafka: { flushTimeoutMs: 2000, spool: { dir, fsyncMs: 50 }, rdkafka: { 'queue.buffering.max.messages': 50 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  for (let i = 0; i < 20; i++) t.equal((await request(d.port, `/track?id=a${i}`, { host: 'uk.test' })).status, 200);

  await kafka.pause();
  for (let i = 0; i < 300; i++) await request(d.port, `/track?id=b${i}`, { host: 'uk.test' });
  await waitFor('spilled to the spool', async () => (await stats(d)).kafka_spool.spilled_total > 0, 60_000);
  const spooled = segments(dir).map((s) => readFileSync(join(dir, s)));
  t.ok(spooled.length > 0, 'the spool holds segments');
  for (const seg of spooled) {
    t.equal(seg.indexOf(RAW), -1, 'no raw address in a spool segment');
    t.not(seg.indexOf('"ip":"127.0.0.0"'), -1, 'the masked one is there');
  }
  await kafka.resume();
  await waitFor('all delivered', async () => (await stats(d)).backends.kafka.persisted === 320, 120_000);

  const messages = await consume(kafka.bootstrap, d.topics.uk!, { count: 320, settleMs: 1000, timeoutMs: 60_000 });
  t.equal(messages.length, 320, 'every Line in the topic');
  t.ok(messages.every((m) => (JSON.parse(m.value.toString()) as { ip: string }).ip === '127.0.0.0'), 'each with the masked address');
  t.notOk(messages.some((m) => m.value.includes(RAW) || JSON.stringify(m.headers).includes(RAW)), 'no raw address in a message or header');
  const lines = d.fileLines('uk');
  t.equal(lines.length, 320, 'every Line in the day file');
  t.notOk(lines.some((l) => l.includes(RAW)), 'no raw address in the day file');
  t.equal(await d.stop(), 0);
  t.notOk(d.logs.some((l) => JSON.stringify(l).includes(`"${RAW}"`)), 'no raw address in a log line');
  t.same(readdirSync(dir).filter((n) => n.endsWith('.seg')).flatMap((s) => (readFileSync(join(dir, s)).includes(RAW) ? [s] : [])), []);
});
