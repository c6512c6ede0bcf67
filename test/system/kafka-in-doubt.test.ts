/**
 * Lines in doubt (src/kafka/doubt.ts): a broker that writes the Lines but
 * whose acknowledgements never come back (a proxy swallows its answers),
 * then SIGTERM. The Lines librdkafka held go to the spool, and the next
 * start reads the topic back before it sends them: those Kafka already has
 * are not sent again. Every answered Line is in the topic exactly once, and
 * `persisted` over both runs equals the answered count.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { drainedCounters } from '../helpers/files.js';
import { spoolHoldsNothing, startKafkaDaemon, topicHolds, traffic, waitFor } from '../helpers/kafka-daemon.js';
import { spoolDir } from '../helpers/kafka-spool.js';
import { startKafka } from '../helpers/kafka.js';
import { startMuteProxy } from '../helpers/mute-proxy.js';
import { sleep, stablePort } from '../helpers/wait.js';

const port = await stablePort();
const proxy = await startMuteProxy(port);
t.teardown(() => proxy.close());
// Clients learn the broker's address from its metadata: the proxy's.
const kafka = await startKafka({ owned: true, ports: { port, controllerPort: await stablePort() }, props: [`advertised.listeners=PLAINTEXT://127.0.0.1:${proxy.port}`] });
t.teardown(() => kafka.stop());
const viaProxy = `127.0.0.1:${proxy.port}`;

t.test('acknowledgements lost, SIGTERM, restart: the Lines Kafka already had are not sent again', async (t) => {
  const topic = 'in-doubt.gr';
  await kafka.createTopic(topic, 3);
  const dir = spoolDir();
  const opts = { topics: { gr: topic }, kafka: { flushTimeoutMs: 2000, spool: { dir, fsyncMs: 100 } } };
  const d = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const tr = traffic(d, 'gr.test', 8, 2);
  await sleep(1500);
  proxy.mute();
  await sleep(2000);
  const first = await tr.stop();
  t.same(first.bad, []);
  t.equal(await d.stop(), 0);
  const held = (d.logs.find((l) => l.msg === 'kafka: Lines librdkafka still held at shutdown written to the spool') as { lines?: number } | undefined)?.lines ?? 0;
  t.ok(held > 0, `${held} Lines sent without a report at shutdown`);
  t.ok(existsSync(join(dir, 'in-doubt.json')), 'the doubt file is written');

  proxy.unmute();
  const d2 = await startKafkaDaemon(viaProxy, opts);
  t.teardown(() => d2.stop());
  await waitFor('the spool empty', () => spoolHoldsNothing(d2), 60_000).catch(() => {});
  t.equal(await d2.stop(), 0);
  const readBack = d2.logs.find((l) => l.msg === 'kafka: Lines in doubt read back; those found in the topic are not sent again') as { inDoubt?: number; found?: number } | undefined;
  t.ok((readBack?.found ?? 0) > 0, `found in the topic: ${readBack?.found} of ${readBack?.inDoubt} in doubt`);
  const c = await topicHolds(kafka.bootstrap, topic, first.ok);
  t.same(c.missing, [], `every one of ${first.ok.length} answered Lines in the topic`);
  t.equal(c.duplicated, 0, 'none twice');
  const run1 = drainedCounters(d.logs, 'kafka'), run2 = drainedCounters(d2.logs, 'kafka');
  t.equal(run1.persisted + run2.persisted, first.ok.length, `persisted over both runs (${run1.persisted} + ${run2.persisted}) = the Lines answered`);
  t.equal(run1.dropped + run2.dropped, 0, 'nothing dropped');
  t.notOk(existsSync(join(dir, 'in-doubt.json')), 'the doubt file is gone once its Lines are settled');
});
