/** Hand-made Lines and a quiet logger for KafkaBackend unit tests. */
import pino from 'pino';
import { makeFlavor, type Flavor } from '../../src/flavor.js';
import type { Line } from '../../src/line.js';
import { KafkaBackend, type KafkaConfig } from '../../src/kafka/backend.js';

/** Unique per run, so reruns against a shared KAFKA_BOOTSTRAP broker never read old messages. */
export const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;

export function flavor(name: string, topic = `scratch.${name}.${runId}`): Flavor {
  return makeFlavor({ name, hosts: [`${name}.example`], timeZone: 'Europe/Athens', topic }, null);
}

export function line(f: Flavor, values: Record<string, unknown>, time = Date.now()): Line {
  return { flavor: f, json: Buffer.from(JSON.stringify(values)), time };
}

export function kafkaConfig(bootstrap: string, over: Partial<KafkaConfig> = {}, rdkafka: KafkaConfig['rdkafka'] = {}): KafkaConfig {
  return {
    enabled: true, queueCapacity: 65536, queueBytes: 64 << 20, key: null, flushTimeoutMs: 10_000,
    ...over,
    rdkafka: { 'metadata.broker.list': bootstrap, ...rdkafka },
  };
}

/** warn and above on stderr (tap shows it on failure); SCRATCHD_TEST_LOG=debug for more. */
export const log = pino({ level: process.env.SCRATCHD_TEST_LOG ?? 'warn' }, pino.destination(2));

/** A KafkaBackend closed at the end of the test whatever happens, so a failing test leaves no producer running. */
export function backend(t: { teardown: (fn: () => unknown) => void }, config: KafkaConfig): KafkaBackend {
  const k = new KafkaBackend(config, log.child({ component: 'kafka' }));
  t.teardown(() => k.close());
  return k;
}
