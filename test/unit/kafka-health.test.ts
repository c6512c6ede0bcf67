/**
 * The Kafka backend's /health state from what is known of the producer,
 * the spool and the queue (src/kafka/health.ts), without a broker: each
 * state and reason an operator reads, and that without a spool (NULL_SPOOL)
 * the spool has nothing to say.
 */
import t from 'tap';
import { kafkaHealth, type HealthInputs } from '../../src/kafka/health.js';
import { NULL_SPOOL } from '../../src/kafka/null-spool.js';

const NOW = 1_000_000;

function inputs(over: Partial<HealthInputs> = {}, producer: Partial<HealthInputs['producer']> = {}): HealthInputs {
  return {
    closing: false,
    producer: {
      connected: true,
      brokerUp: true,
      fatal: null,
      lastError: null,
      stalled: () => false,
      stallReason: () => '3 messages in librdkafka without a delivery report for 6 s',
      ...producer,
    },
    spool: NULL_SPOOL,
    spilling: false,
    spoolInFlight: 0,
    lastSpoolDrop: null,
    lastFailure: null,
    queueFull: false,
    waiting: 0,
    capacity: 100,
    ...over,
  };
}

const spool = (records: number, ready = true) => ({ ready, records, isEmpty: () => records === 0 });

t.test('without a spool: the producer and the queue decide', async (t) => {
  t.same(kafkaHealth(NOW, inputs()), { state: 'ok' });
  t.same(kafkaHealth(NOW, inputs({ closing: true })), { state: 'down', reason: 'closing' });
  t.same(kafkaHealth(NOW, inputs({}, { connected: false, lastError: { at: NOW, what: 'connect: timed out' } })),
    { state: 'down', reason: 'not connected to any broker yet: connect: timed out' });
  t.same(kafkaHealth(NOW, inputs({}, { brokerUp: false })), { state: 'down', reason: 'no broker connection' });
  t.same(kafkaHealth(NOW, inputs({}, { fatal: 'idempotence' })),
    { state: 'down', reason: 'fatal producer error, restart scratchd: idempotence' });
  t.same(kafkaHealth(NOW, inputs({}, { stalled: () => true })),
    { state: 'degraded', reason: '3 messages in librdkafka without a delivery report for 6 s' });
  t.same(kafkaHealth(NOW, inputs({ queueFull: true })), { state: 'degraded', reason: 'librdkafka queue full, Lines waiting' });
  t.same(kafkaHealth(NOW, inputs({ waiting: 51 })), { state: 'degraded', reason: 'queue 51/100' });
  t.same(kafkaHealth(NOW, inputs({ lastFailure: { at: NOW - 59_000, what: 'refused: too large' } })),
    { state: 'degraded', reason: 'Lines dropped in the last minute: refused: too large' });
  t.same(kafkaHealth(NOW, inputs({ lastFailure: { at: NOW - 61_000, what: 'refused: too large' } })), { state: 'ok' });
});

t.test('with a spool: what it holds decides', async (t) => {
  t.same(kafkaHealth(NOW, inputs({ spool: spool(0, false) })), { state: 'spooling', reason: 'opening the spool' });
  t.same(kafkaHealth(NOW, inputs({ spool: spool(7), spilling: true }, { brokerUp: false })),
    { state: 'spooling', reason: 'no broker connection; 7 Lines safe in the spool' });
  t.same(kafkaHealth(NOW, inputs({ spool: spool(7), spilling: true })),
    { state: 'spooling', reason: 'draining the spool; 7 Lines safe in the spool' });
  t.same(kafkaHealth(NOW, inputs({ spool: spool(7), spoolInFlight: 7 })), { state: 'ok' },
    'records in flight to a broker that answers are as good as delivered');
  t.same(kafkaHealth(NOW, inputs({ spool: spool(7), spilling: true, lastSpoolDrop: { at: NOW - 1000, reason: 'disk_full' } })),
    { state: 'down', reason: 'the spool drops Lines (disk_full); 7 Lines safe in it' });
  t.same(kafkaHealth(NOW, inputs({ spool: spool(0), lastSpoolDrop: { at: NOW - 30_000, reason: 'spool_full' } })),
    { state: 'degraded', reason: 'the spool dropped Lines in the last minute (spool_full)' });
});
