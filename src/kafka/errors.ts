/**
 * librdkafka's error codes as the Kafka backend sorts them: which failures
 * may succeed on a later try (the spool keeps those), and the code of
 * whatever produce() threw.
 */
import Kafka from 'node-rdkafka';

export const ERR = Kafka.CODES.ERRORS;

/**
 * Delivery errors after which the same message may well succeed later: a
 * spooled one stays in the spool, a normal one is re-spooled.
 */
const RETRIABLE = new Set<number>([
  ERR.ERR__MSG_TIMED_OUT, ERR.ERR__TIMED_OUT, ERR.ERR__TRANSPORT, ERR.ERR__PURGE_QUEUE, ERR.ERR__PURGE_INFLIGHT,
  ERR.ERR__ALL_BROKERS_DOWN, ERR.ERR_REQUEST_TIMED_OUT, ERR.ERR_NOT_ENOUGH_REPLICAS,
  ERR.ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, ERR.ERR_LEADER_NOT_AVAILABLE, ERR.ERR_NOT_LEADER_FOR_PARTITION,
  ERR.ERR_NETWORK_EXCEPTION,
].filter((c): c is number => typeof c === 'number'));

export function retriable(err: Kafka.LibrdKafkaError): boolean {
  return RETRIABLE.has(err.code) || (err as { isRetriable?: boolean }).isRetriable === true;
}

export function code(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number'
    ? (err as { code: number }).code : undefined;
}
