/**
 * KafkaBackend while the broker is absent, paused or killed. These tests
 * break their broker, so they always start their own (KAFKA_BOOTSTRAP is
 * ignored here, and says so), never skip.
 */
import t from 'tap';
import type { KafkaBackend } from '../../src/kafka/backend.js';
import { startKafka, waitForMetadata } from '../helpers/kafka.js';
import { topicNow } from '../helpers/kafka-daemon.js';
import { backend, flavor, kafkaConfig, line } from '../helpers/lines.js';
import { sleep, until } from '../helpers/wait.js';
import type { Flavor } from '../../src/flavor.js';
import type { Test } from 'tap';

const kafka = await startKafka({ owned: true });
t.teardown(() => kafka.stop());

/**
 * For a test that needs a live broker: whatever an earlier one did to it.
 * Tests that begin by killing it do not call this, so the order below
 * (pause, pause, kill, kill, kill) costs one restart per kill that needs one.
 */
async function live(): Promise<void> {
  await kafka.resume();
  if (!kafka.alive()) await kafka.restart();
  await waitForMetadata(kafka.bootstrap, 5000).catch(() => kafka.restart());
}

/** Sends `perTick` Lines every 10 ms until stopped; returns the numbers accepted. */
function traffic(k: KafkaBackend, f: Flavor, perTick = 5): { stop: () => string[]; refused: () => number } {
  const accepted: string[] = [];
  let n = 0;
  let refused = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) {
      const id = String(n++);
      if (k.send(line(f, { id }))) accepted.push(id);
      else refused++;
    }
  }, 10);
  return { stop: () => { clearInterval(timer); return accepted; }, refused: () => refused };
}

async function expectAll(t: Test, f: Flavor, ids: string[], exactlyOnce: boolean): Promise<void> {
  // Called once the backend is closed: what the topic holds now is all it will hold.
  const got = await topicNow(kafka.bootstrap, f.topic);
  const seen = new Map<string, number>();
  for (const m of got) {
    const id = (JSON.parse(m.value.toString()) as { id: string }).id;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  const missing = ids.filter((id) => !seen.has(id));
  const dups = [...seen.values()].filter((c) => c > 1).length;
  t.equal(missing.length, 0, `every accepted Line is in Kafka (${ids.length})`);
  if (exactlyOnce) t.equal(dups, 0, 'no duplicates');
  else t.comment(`${dups} duplicates`);
}

t.test('broker paused (SIGSTOP) under steady traffic until health tells', async (t) => {
  await live();
  const f = flavor('paused');
  const k = backend(t, kafkaConfig(kafka.bootstrap));
  await k.start();
  const tr = traffic(k, f);
  await until('Lines delivered before the outage', () => k.counters.persisted >= 100, 30_000);
  await kafka.pause();
  const pausedAt = Date.now();
  // A paused broker keeps its connections: only the missing delivery reports
  // (STALL_MS) tell, so this outage lasts as long as that takes.
  // Bounded: STALL_MS and a margin, never librdkafka's own socket timeout (60 s).
  await until('health not ok while paused', () => k.health().state !== 'ok', 25_000).catch(() => {});
  t.not(k.health().state, 'ok', `health while paused: ${JSON.stringify(k.health())}`);
  t.comment(`paused for ${Date.now() - pausedAt} ms`);
  t.ok(k.queued() > 1000, `Lines wait meanwhile (${k.queued()})`);
  await kafka.resume();
  // Traffic goes on until the backend is back.
  await until('health ok again', () => k.health().state === 'ok', 30_000);
  const ids = tr.stop();
  t.equal(tr.refused(), 0, 'nothing dropped');
  await until('all delivered', () => k.counters.persisted === ids.length, 90_000);
  await k.close();
  await expectAll(t, f, ids, true);
  t.match(k.counters, { persisted: ids.length, dropped: 0 });
});

t.test('beyond the bounds: counted as dropped, the rest delivered after recovery', async (t) => {
  await live();
  const f = flavor('bounded');
  const k = backend(t, kafkaConfig(kafka.bootstrap, { queueCapacity: 200 }, { 'queue.buffering.max.messages': 100 }));
  await k.start();
  await until('connected', () => k.health().state === 'ok');
  await kafka.pause();
  const tr = traffic(k, f, 5); // 500 Lines/s
  await until('Lines refused once both queues are full', () => tr.refused() > 0 && k.counters.retried > 0, 30_000).catch(() => {});
  await sleep(300); // and a little longer: still bounded
  const ids = tr.stop();
  t.ok(tr.refused() > 0, `some dropped (${tr.refused()})`);
  t.equal(k.counters.dropped, tr.refused(), 'every refused Line counted as dropped');
  t.ok(k.counters.retried > 0, `produce retried on QUEUE_FULL (${k.counters.retried})`);
  t.ok(k.queued() <= 200 + 200 + 100, `bounded: ${k.queued()} waiting`);
  t.equal(k.health().state, 'degraded', `health: ${k.health().reason}`);
  await kafka.resume();
  await until('all accepted delivered', () => k.counters.persisted === ids.length, 60_000);
  await k.close();
  await expectAll(t, f, ids, true);
});

t.test('beyond the byte bound: a queue of small count but few bytes drops by bytes (#30 hostile 6)', async (t) => {
  await live();
  const f = flavor('bytes');
  // Lines of about 14 bytes: 1400 bytes is about 100 of them, far below the count bound.
  const k = backend(t, kafkaConfig(kafka.bootstrap, { queueCapacity: 65536, queueBytes: 1400 }, { 'queue.buffering.max.messages': 100 }));
  await k.start();
  await until('connected', () => k.health().state === 'ok');
  await kafka.pause();
  const tr = traffic(k, f, 5);
  await until('Lines refused by bytes', () => tr.refused() > 0, 30_000).catch(() => {});
  const ids = tr.stop();
  t.ok(tr.refused() > 0, `some dropped (${tr.refused()}) though the count bound was never near`);
  t.equal(k.counters.dropped, tr.refused(), 'every refused Line counted as dropped');
  t.ok(k.queued() <= 100 + 120 + 5, `bounded by bytes: ${k.queued()} waiting`);
  await kafka.resume();
  await until('all accepted delivered', () => k.counters.persisted === ids.length, 60_000);
  await k.close();
});

t.test('broker killed (SIGKILL) for 6 s under steady traffic, then restarted', async (t) => {
  await live();
  const f = flavor('killed');
  const k = backend(t, kafkaConfig(kafka.bootstrap));
  await k.start();
  const tr = traffic(k, f);
  await until('Lines delivered before the outage', () => k.counters.persisted >= 100, 30_000);
  await kafka.kill();
  // Longer than librdkafka's reconnect backoff (reconnect.backoff.max.ms 2 s): it retries several times.
  await sleep(6000);
  t.equal(k.health().state, 'down', `health while the broker is dead: ${k.health().reason}`);
  await kafka.restart();
  // Traffic goes on until the backend is back.
  await until('health ok again', () => k.health().state === 'ok', 30_000);
  const ids = tr.stop();
  t.equal(tr.refused(), 0, 'nothing dropped');
  await until('all settled', () => k.queued() === 0, 90_000);
  t.equal(k.counters.dropped, 0);
  // Acknowledged before the kill = flushed by Kafka? acks=all on one node
  // only means written to the page cache, so SIGKILL can lose nothing here
  // (the OS keeps the page cache) but power loss could.
  await k.close();
  await expectAll(t, f, ids, true);
});

t.test('broker absent at start: start() does not wait, Lines are delivered once it appears', async (t) => {
  const f = flavor('absent');
  await kafka.kill();
  const k = backend(t, kafkaConfig(kafka.bootstrap));
  const began = Date.now();
  await k.start();
  t.ok(Date.now() - began < 3000, `start() returns at once, not when a broker answers (${Date.now() - began} ms)`);
  const tr = traffic(k, f);
  await sleep(2000);
  t.equal(k.health().state, 'down', `health down without a broker: ${k.health().reason}`);
  t.equal(k.counters.persisted, 0);
  await kafka.restart();
  // Traffic goes on until the backend is back.
  await until('health ok again', () => k.health().state === 'ok', 30_000);
  const ids = tr.stop();
  t.equal(tr.refused(), 0, 'nothing dropped');
  await until('all delivered', () => k.counters.persisted === ids.length, 60_000);
  t.equal(k.health().state, 'ok');
  await k.close();
  await expectAll(t, f, ids, true);
  t.same(k.counters, { persisted: ids.length, failed: 0, dropped: 0, retried: 0 });
});

t.test('close() with the broker down gives up after flushTimeoutMs and counts the loss', async (t) => {
  await live();
  const f = flavor('closedown');
  const k = backend(t, kafkaConfig(kafka.bootstrap, { flushTimeoutMs: 1500 }));
  await k.start();
  await until('connected', () => k.health().state === 'ok');
  await kafka.kill();
  for (let i = 0; i < 300; i++) k.send(line(f, { id: String(i) }));
  const began = Date.now();
  await k.close();
  const took = Date.now() - began;
  t.ok(took >= 1400 && took < 10_000, `close took ${took} ms: flushTimeoutMs, then gives up`);
  t.same(k.counters, { persisted: 0, failed: 0, dropped: 300, retried: 0 });
  t.equal(k.queued(), 0);
});

t.test('close() when no broker ever answered', async (t) => {
  const f = flavor('neverup');
  await kafka.kill();
  const k = backend(t, kafkaConfig(kafka.bootstrap, { flushTimeoutMs: 1000 }));
  await k.start();
  for (let i = 0; i < 10; i++) k.send(line(f, { id: String(i) }));
  const began = Date.now();
  await k.close();
  t.ok(Date.now() - began < 10_000, `bounded by flushTimeoutMs (${Date.now() - began} ms)`);
  t.equal(k.counters.dropped, 10);
});
