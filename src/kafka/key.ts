/**
 * A message's key: the named Values field of its Line (`backends.kafka.key`),
 * for the daemon's producer and `scratchd replay` alike. Lines carry only
 * their serialized JSON, so the field is parsed back out, and only when a
 * key is configured: the default (no key) costs no parse per Line.
 */
export function messageKey(json: Buffer, field: string | null): string | null {
  if (field === null) return null;
  const v = (JSON.parse(json.toString()) as Record<string, unknown>)[field];
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}
