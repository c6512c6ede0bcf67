/**
 * Kafka clients for the recovery commands, configured from the daemon's
 * `backends.kafka.rdkafka` so they reach the same brokers the same way.
 */
import { hostname } from 'node:os';
import Kafka from 'node-rdkafka';
import type { KafkaConfig } from '../config.js';
import { DELIVERY_DEFAULTS } from '../kafka/settings.js';
import { CommandError } from './command-error.js';

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The settings that say how to reach the cluster (brokers, TLS, SASL,
 * sockets); the rest of `rdkafka` is for the daemon's producer and a consumer
 * would refuse it.
 */
export function connectionSettings(rdkafka: KafkaConfig['rdkafka']): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(rdkafka)) {
    if (/^(metadata\.broker\.list|bootstrap\.servers|broker\.address\.family|security\.|ssl\.|sasl\.|socket\.)/.test(k)) out[k] = v;
  }
  return out;
}

function brokers(rdkafka: KafkaConfig['rdkafka']): string {
  return String(rdkafka['metadata.broker.list'] ?? rdkafka['bootstrap.servers'] ?? '(no metadata.broker.list)');
}

/** A connected producer like the daemon's (acks=all, idempotent), with delivery reports. */
export async function connectProducer(config: KafkaConfig, what: string): Promise<Kafka.Producer> {
  let producer: Kafka.Producer;
  try {
    const settings: Record<string, string | number | boolean> = {
      // As the daemon's producer delivers; the rest of its defaults (an
      // unbounded message.timeout.ms, its queue) are for the daemon only.
      ...DELIVERY_DEFAULTS,
      ...config.rdkafka,
      'client.id': `scratchd-${what}@${hostname()}`,
      dr_cb: true,
    };
    producer = new Kafka.Producer(settings);
  } catch (err) {
    throw new CommandError(`backends.kafka.rdkafka: ${(err as Error).message}`);
  }
  await new Promise<void>((resolve, reject) => producer.connect({ timeout: CONNECT_TIMEOUT_MS, allTopics: false }, (err) =>
    err ? reject(new CommandError(`cannot reach Kafka at ${brokers(config.rdkafka)}: ${err.message}`)) : resolve()));
  producer.setPollInterval(50);
  return producer;
}

/** A consumer that never joins its group (partitions are assigned) and tells when it reaches a partition's end ('partition.eof'). */
export async function connectConsumer(config: KafkaConfig, what: string): Promise<Kafka.KafkaConsumer> {
  const consumer = new Kafka.KafkaConsumer({
    ...connectionSettings(config.rdkafka),
    'client.id': `scratchd-${what}@${hostname()}`,
    'group.id': `scratchd-${what}`,
    'enable.auto.commit': false,
    'enable.partition.eof': true,
  }, { 'auto.offset.reset': 'earliest' });
  await new Promise<void>((resolve, reject) => consumer.connect({ timeout: CONNECT_TIMEOUT_MS, allTopics: false }, (err) =>
    err ? reject(new CommandError(`cannot reach Kafka at ${brokers(config.rdkafka)}: ${err.message}`)) : resolve()));
  return consumer;
}

/** The topic's partition ids; a CommandError when the cluster does not have it. */
export async function partitionsOf(client: Kafka.Client<never> | Kafka.Producer | Kafka.KafkaConsumer, topic: string): Promise<number[]> {
  const md = await new Promise<Kafka.Metadata>((resolve, reject) =>
    (client as Kafka.Producer).getMetadata({ topic, timeout: CONNECT_TIMEOUT_MS }, (err, m) =>
      err ? reject(new CommandError(`cannot read the metadata of topic ${topic}: ${err.message}`)) : resolve(m)));
  const t = md.topics.find((x) => x.name === topic);
  if (t === undefined || t.partitions.length === 0) throw new CommandError(`topic ${topic} does not exist`);
  return t.partitions.map((p) => p.id).sort((a, b) => a - b);
}
