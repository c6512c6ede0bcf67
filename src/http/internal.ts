import { createHash } from 'node:crypto';

/**
 * Log fields for a converter failure (reason `internal`, a bug in scratchd):
 * enough to find and replay the input, never the input itself (it may hold
 * personal data): its length in bytes, a SHA-256 prefix, and where the
 * exception came from (its class and stack frames, not its message, which
 * could quote the input).
 */
export function internalFailure(input: string | Uint8Array, error: unknown): object {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const e = error instanceof Error ? error : null;
  return {
    inputBytes: bytes.length,
    inputSha256: createHash('sha256').update(bytes).digest('hex').slice(0, 16),
    errorType: e?.name ?? typeof error,
    stack: e?.stack?.split('\n').filter((l) => l.startsWith('    at ')).slice(0, 12).join('\n') ?? '',
  };
}
