/**
 * The Kafka backend's librdkafka settings: production defaults (docs/kafka.md
 * has the table), under an operator's own `backends.kafka.rdkafka`, and the
 * check of those that start-up and reload make before anything connects.
 */
import { hostname } from 'node:os';
import Kafka from 'node-rdkafka';
import type { KafkaConfig } from '../config.js';
import { byScope, type Settings } from './scope.js';

/** How every scratchd producer delivers, the daemon's and `scratchd replay`'s alike. */
export const DELIVERY_DEFAULTS: Readonly<Record<string, string | number | boolean>> = {
  // Every Line acknowledged by all in-sync replicas, and librdkafka's own
  // retries cannot duplicate or reorder within a partition.
  acks: 'all',
  'enable.idempotence': true,
  // JSON compresses well; lz4 costs the least CPU for that.
  'compression.type': 'lz4',
  // Beacons arrive continuously: 5 ms of batching is invisible to analytics
  // and cuts requests to the broker by orders of magnitude.
  'linger.ms': 5,
};

/**
 * Production defaults, each overridable through `backends.kafka.rdkafka`
 * (docs/kafka.md has the table).
 */
export const RDKAFKA_DEFAULTS: Readonly<Record<string, string | number | boolean>> = {
  'client.id': `scratchd@${hostname()}`,
  ...DELIVERY_DEFAULTS,
  // The outage buffer: bounded by space, not by time (backend.ts's header).
  'queue.buffering.max.messages': 500_000,
  'queue.buffering.max.kbytes': 262_144,
  'message.timeout.ms': 0,
  // Notice dead peers (NAT/firewall idle timeouts, a paused broker) and get
  // back to a returning broker within a couple of seconds, not librdkafka's 10.
  'socket.keepalive.enable': true,
  'reconnect.backoff.max.ms': 2000,
  // Broker states for health(); a small JSON every 5 s.
  'statistics.interval.ms': 5000,
  // librdkafka logs every idle connection close the broker makes.
  'log.connection.close': false,
};

/**
 * What librdkafka says about `backends.kafka.rdkafka` (unknown property,
 * value out of range), or null when it takes them; for `--check` and
 * start-up, which otherwise would meet it as an exception from the
 * KafkaBackend constructor. Nothing connects.
 */
export function rdkafkaConfigError(rdkafka: KafkaConfig['rdkafka']): string | null {
  try {
    newProducer(rdkafka);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * A producer with the defaults under the operator's settings, each passed
 * in its librdkafka scope (scope.ts); delivery reports on. Invalid settings
 * throw here.
 */
export function newProducer(rdkafka: KafkaConfig['rdkafka']): Kafka.Producer {
  const { global, topic } = byScope({ ...RDKAFKA_DEFAULTS, ...rdkafka } as Settings);
  return new Kafka.Producer({ ...global, dr_cb: true }, topic);
}

/**
 * What a consumer of scratchd's own (the read-back, readback.ts) takes of
 * the operator's settings: the global ones (brokers, security, client id);
 * librdkafka ignores producer-only ones there.
 */
export function consumerSettings(rdkafka: KafkaConfig['rdkafka']): Settings {
  return { 'client.id': RDKAFKA_DEFAULTS['client.id']!, ...byScope({ ...rdkafka } as Settings).global };
}
