/**
 * librdkafka's error codes as the Kafka backend sorts them: which failures
 * may succeed on a later try (the spool keeps those), and the code of an
 * error from node-rdkafka.
 *
 * node-rdkafka hands delivery errors over as text only: its C++ side makes
 * a plain Error of librdkafka's err2str() ("Local: Message timed out"), and
 * its JavaScript side keeps the lower-cased part after the origin ("message
 * timed out") with code -1. The code is recovered from that text through
 * the same err2str(), for every code librdkafka has.
 */
import { createRequire } from 'node:module';
import Kafka from 'node-rdkafka';

export const ERR = Kafka.CODES.ERRORS;

const binding = createRequire(import.meta.url)('node-rdkafka/librdkafka.js') as { err2str(code: number): string };

/** The text node-rdkafka keeps of librdkafka's text for a code (lib/error.js). */
function keptText(text: string): string {
  const parts = text.split(': ');
  return (parts.length > 1 ? parts[1]! : text).toLowerCase();
}

/** Kept text → code; aliases (two names, one code) share a text. */
const BY_TEXT = new Map<string, number>();
for (const c of Object.values(ERR)) {
  if (typeof c !== 'number') continue;
  const text = keptText(binding.err2str(c));
  if (!BY_TEXT.has(text)) BY_TEXT.set(text, c);
}

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

/**
 * librdkafka's code of an error from node-rdkafka: its own when it has one,
 * else the one whose text it carries; undefined when neither tells.
 */
export function code(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const c = (err as { code?: unknown }).code;
  if (typeof c === 'number' && c !== -1) return c;
  const message = (err as { message?: unknown }).message;
  if (typeof message !== 'string') return undefined;
  return BY_TEXT.get(message.toLowerCase()) ?? BY_TEXT.get(keptText(message));
}

/** librdkafka's name for an error's code ("ERR__MSG_TIMED_OUT"), for logs and tests. */
export function codeName(err: unknown): string {
  const c = code(err);
  if (c === undefined) return 'unknown';
  for (const [name, v] of Object.entries(ERR)) if (v === c) return name;
  return String(c);
}

export function retriable(err: unknown): boolean {
  const c = code(err);
  return (c !== undefined && RETRIABLE.has(c)) || (err as { isRetriable?: boolean } | null)?.isRetriable === true;
}

/** The topic does not exist (or not yet: auto-creation, metadata not propagated). */
export function unknownTopic(err: unknown): boolean {
  const c = code(err);
  return c === ERR.ERR__UNKNOWN_TOPIC || c === ERR.ERR_UNKNOWN_TOPIC_OR_PART;
}
