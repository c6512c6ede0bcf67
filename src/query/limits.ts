/**
 * The converter's limits and its answers when it refuses: Rack 2.2's own
 * limits, and one preallocated frozen Rejection per reason (the reasons are
 * names in src/http/reject.ts).
 */

export interface QueryLimits { readonly maxParams: number; readonly maxDepth: number; }
export type QueryRejectReason = 'bad_encoding' | 'invalid_utf8' | 'param_type' | 'depth' | 'too_many_params' | 'key_space' | 'internal';
/** `error` only on `internal`: what the converter threw (a bug), for the log. */
export interface Rejection { readonly reason: QueryRejectReason; readonly error?: unknown }

/** Rack 2.2's own limits, for the corpus test (and the most the config allows). */
export const rackLimits: QueryLimits = Object.freeze({ maxParams: 4096, maxDepth: 100 });

const rej = (reason: QueryRejectReason): Rejection => Object.freeze({ reason });
export const BAD_ENCODING = rej('bad_encoding');
export const INVALID_UTF8 = rej('invalid_utf8');
export const PARAM_TYPE = rej('param_type');
export const DEPTH = rej('depth');
export const TOO_MANY_PARAMS = rej('too_many_params');
export const KEY_SPACE = rej('key_space');

/** The Rejections the converter throws on purpose (anything else it throws is a bug). */
export const isRejection = (e: unknown): e is Rejection =>
  e === BAD_ENCODING || e === INVALID_UTF8 || e === PARAM_TYPE || e === DEPTH || e === KEY_SPACE || e === TOO_MANY_PARAMS;

/**
 * What the converter threw: a Rejection it meant, or a bug, which becomes
 * `internal` (answered 500 and logged by the caller), never passed off as bad input.
 */
export const caught = (e: unknown): Rejection => (isRejection(e) ? e : Object.freeze({ reason: 'internal', error: e }));

/** Rack::QueryParser::BYTESIZE_LIMIT (4 MiB); over it Rack raises QueryLimitError. */
export const BYTESIZE_LIMIT = 4194304;
/** Rack::Utils.key_space_limit (per hash). */
export const KEY_SPACE_LIMIT = 65536;
/** JSON.generate's default max_nesting. */
export const MAX_NESTING = 100;
