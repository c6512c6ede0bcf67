import type Kafka from 'node-rdkafka';

/**
 * Flush for up to `flushMs`, stop polling, then destroy the handle.
 *
 * Polling stops before the destroy. node-rdkafka's poll() reads the
 * librdkafka handle without the lock that its disconnect worker holds while
 * it destroys that handle. So a tick of setPollInterval during the destroy
 * is a use-after-free. CI saw it as a SIGSEGV at shutdown after a broker was
 * killed. RDKafka.jl #14 and rdkafka-ruby #246 are the same race.
 * Reports that come during the flush still reach JS: flush() serves them itself.
 */
export async function disconnectProducer(producer: Kafka.Producer, flushMs: number): Promise<void> {
  if (flushMs > 0) await new Promise<void>((resolve) => producer.flush(flushMs, () => resolve()));
  producer.setPollInterval(0);
  await new Promise<void>((resolve) => producer.disconnect(0, () => resolve()));
}
