/**
 * The request path's counters: plain numbers bumped in place, read by the
 * stats listener when it is asked. (prom-client's labelled counters cost a
 * label lookup per increment; these cost an add.)
 */

/** Why a request was refused; each has its own counter. */
export type RejectReason =
  | 'unknown_flavor'
  | 'bad_encoding'
  | 'invalid_utf8'
  | 'param_type'
  | 'depth'
  | 'too_many_params'
  | 'key_space'
  | 'too_long'
  | 'body_too_large'
  | 'bad_content_type'
  | 'schema';

export const rejectReasons: readonly RejectReason[] = [
  'unknown_flavor', 'bad_encoding', 'invalid_utf8', 'param_type', 'depth', 'too_many_params',
  'key_space', 'too_long', 'body_too_large', 'bad_content_type', 'schema',
];

export interface RequestCounters {
  /** Answered requests by "METHOD STATUS", e.g. "GET 200". */
  readonly responses: Map<string, number>;
  readonly rejected: Record<RejectReason, number>;
}

export function newRequestCounters(): RequestCounters {
  const rejected = {} as Record<RejectReason, number>;
  for (const r of rejectReasons) rejected[r] = 0;
  return { responses: new Map(), rejected };
}

export function countResponse(c: RequestCounters, method: string, status: number): void {
  const key = `${method} ${status}`;
  c.responses.set(key, (c.responses.get(key) ?? 0) + 1);
}
