/**
 * The one table of why a request is refused: reason → HTTP status → the
 * answer's text. The reason type, the `rejected` counters, /metrics and the
 * tests' lists are all derived from it (fastify's and undici's model: one
 * error table, stable codes). Add a reason here and everything else follows.
 * `close`: the answer also closes the connection (the stream is out of step,
 * or the client must not go on sending).
 */
export const rejections = {
  unknown_flavor: { status: 400, meaning: 'unknown or missing Host' },
  bad_encoding: { status: 400, meaning: 'invalid %-encoding' },
  invalid_utf8: { status: 400, meaning: 'Values not valid UTF-8 after decoding' },
  param_type: { status: 400, meaning: 'a key used both as a value and as a hash or array' },
  depth: { status: 400, meaning: 'nesting deeper than limits.maxDepth' },
  too_many_params: { status: 400, meaning: 'more parameters than limits.maxParams' },
  key_space: { status: 400, meaning: 'keys longer than Rack allows' },
  too_long: { status: 414, meaning: 'query over limits.maxQueryBytes' },
  body_too_large: { status: 413, meaning: 'body over limits.maxBodyBytes' },
  bad_content_type: { status: 415, meaning: 'POST body of a type scratchd does not read' },
  schema: { status: 400, meaning: "Values fail the flavor's JSON Schema" },
  file_part: { status: 400, meaning: 'a multipart body with a file part' },
  bad_multipart: { status: 400, meaning: 'a multipart body that cannot be parsed' },
  bulk_entry: { status: 400, meaning: 'a bulk requests entry that is not a string' },
  bulk_too_large: { status: 413, meaning: 'more bulk requests than limits.maxBulkRequests, or more bytes of Lines than limits.maxBulkBytes' },
  chunk_extension: { status: 400, meaning: 'a chunked body whose chunk-size line has an extension (uWS cannot frame it)', close: true },
  framing: { status: 400, meaning: 'Content-Length copies that differ, an empty or non-decimal Content-Length, or a Transfer-Encoding whose codings do not end with one chunked (RFC 9112 §6.3)', close: true },
  transfer_coding: { status: 501, meaning: 'a transfer coding before chunked (gzip, deflate, …): scratchd implements none (RFC 9112 §6.1)', close: true },
  busy: { status: 503, meaning: 'bodies held between reads are over limits.maxBodyBytesInFlight', close: true },
  relay_full: { status: 503, meaning: "the serving thread's relay to the backends is full (the main thread is behind); the Line is not recorded" },
  internal: { status: 500, meaning: 'a bug in scratchd (logged); the request was not recorded' },
} as const satisfies Record<string, { status: number; meaning: string; close?: true }>;

/** Why a request was refused; each has its own counter. */
export type RejectReason = keyof typeof rejections;

export const rejectReasons = Object.keys(rejections) as readonly RejectReason[];

/** Whether refusing for `reason` also closes the connection. */
export function closes(reason: RejectReason): boolean {
  return 'close' in rejections[reason];
}

/** Status lines for every status either listener answers with. */
export const statusText: Readonly<Record<number, string>> = {
  200: '200 OK', 204: '204 No Content', 400: '400 Bad Request', 404: '404 Not Found',
  405: '405 Method Not Allowed', 413: '413 Content Too Large', 414: '414 URI Too Long',
  415: '415 Unsupported Media Type', 500: '500 Internal Server Error', 501: '501 Not Implemented',
  503: '503 Service Unavailable',
};
