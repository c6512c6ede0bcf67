/**
 * librdkafka's two property scopes. node-rdkafka takes topic-level
 * properties only in its second (topic config) argument: it gives librdkafka
 * a topic config of its own, which replaces the default topic config that
 * librdkafka would otherwise build from topic properties set globally, so a
 * topic property in the first argument is silently dropped.
 *
 * TOPIC_ONLY is the "Topic configuration properties" table of librdkafka's
 * CONFIGURATION.md, less those its global table has too (those are taken
 * globally and inherited by every topic). test/unit/kafka-scope.test.ts
 * compares it with the CONFIGURATION.md that node-rdkafka ships, so a
 * librdkafka upgrade that adds one fails the suite instead of dropping it.
 */
export const TOPIC_ONLY: ReadonlySet<string> = new Set([
  'request.required.acks', 'acks', 'request.timeout.ms', 'message.timeout.ms', 'delivery.timeout.ms',
  'queuing.strategy', 'produce.offset.report', 'partitioner', 'partitioner_cb', 'msg_order_cmp',
  'compression.level',
  // Consumer-only, listed for completeness: a producer ignores them.
  'auto.commit.enable', 'auto.offset.reset', 'offset.store.path', 'offset.store.sync.interval.ms',
  'consume.callback.max.messages',
]);

export type Settings = Record<string, string | number | boolean>;

/** Settings split by scope: node-rdkafka's first (global) and second (topic) arguments. */
export function byScope(settings: Readonly<Settings>): { global: Settings; topic: Settings } {
  const global: Settings = {};
  const topic: Settings = {};
  for (const [k, v] of Object.entries(settings)) (TOPIC_ONLY.has(k) ? topic : global)[k] = v;
  return { global, topic };
}
