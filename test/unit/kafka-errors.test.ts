/**
 * Delivery errors reach JavaScript as text with code -1 (node-rdkafka makes
 * them from librdkafka's err2str); the backend recovers the code from it.
 * The errors here are made the way node-rdkafka makes them, from the text its
 * C++ side passes (test/system/kafka-delivery.test.ts meets them for real).
 */
import { createRequire } from 'node:module';
import t from 'tap';
import { code, codeName, ERR, retriable } from '../../src/kafka/errors.js';

const require = createRequire(import.meta.url);
const { create } = require('node-rdkafka/lib/error.js') as { create(e: unknown): Error & { code: number } };

/** As node-rdkafka's producer makes a delivery error: from a plain Error of librdkafka's text. */
const delivery = (text: string): Error & { code: number } => create(new Error(text));

t.test('a timed-out message is told by its text, and is retriable', async (t) => {
  const err = delivery('Local: Message timed out');
  t.equal(err.code, -1, 'node-rdkafka gives no code');
  t.equal(code(err), ERR.ERR__MSG_TIMED_OUT);
  t.equal(codeName(err), 'ERR__MSG_TIMED_OUT');
  t.ok(retriable(err));
});

t.test('final errors are told apart too, and are not retriable', async (t) => {
  t.equal(code(delivery('Broker: Message size too large')), ERR.ERR_MSG_SIZE_TOO_LARGE);
  t.notOk(retriable(delivery('Broker: Message size too large')));
  t.equal(code(delivery('Broker: Unknown topic or partition')), ERR.ERR_UNKNOWN_TOPIC_OR_PART);
  t.notOk(retriable(delivery('Broker: Unknown topic or partition')));
  t.equal(code(delivery('Local: Unknown topic')), ERR.ERR__UNKNOWN_TOPIC);
});

t.test('more retriable ones', async (t) => {
  t.ok(retriable(delivery('Broker: Not enough in-sync replicas')));
  t.ok(retriable(delivery('Local: Broker transport failure')));
  t.ok(retriable(delivery('Local: Purged in queue')));
});

t.test('an error with a real code keeps it; unknown text has none', async (t) => {
  t.equal(code(create(ERR.ERR__QUEUE_FULL)), ERR.ERR__QUEUE_FULL);
  t.equal(code({ code: ERR.ERR__STATE, message: 'x' }), ERR.ERR__STATE);
  t.equal(code(delivery('Something librdkafka never says')), undefined);
  t.notOk(retriable(delivery('Something librdkafka never says')));
  t.equal(code('not an error'), undefined);
});
