/**
 * How a request's body is framed (RFC 9112 §6), checked over every
 * Content-Length and Transfer-Encoding header. uWS reads only the first of
 * each: it takes `Content-Length: 3` then `Content-Length: 58` as 3 (a proxy
 * that takes the last forwards a request smuggled in the other 55 bytes), and
 * any Transfer-Encoding at all as chunked (`identity` then waits for a chunk
 * size until its idle timeout; `gzip, chunked` would be stored compressed).
 * What uWS refuses itself (`Content-Length: 3, 3`, `+3`, both headers at once)
 * it answers with its own 400 and close, before or after scratchd's handler.
 */
import type { HttpRequest } from 'uWebSockets.js';
import type { RejectReason } from './reject.js';

/** The body's framing as uWS will read it, or why it must be refused (always with a close). */
export type Framing = { readonly length: number | null; readonly chunked: boolean } | RejectReason;

const DIGITS = /^\d+$/;

export function framing(req: HttpRequest): Framing {
  let length: string | null = null;
  let lengths = true;
  let codings: string | null = null;
  req.forEach((k, v) => {
    if (k === 'content-length') {
      if (length === null) length = v;
      // Equal copies are allowed (RFC 9112 §6.3: one valid value repeated).
      else if (!DIGITS.test(v) || Number(v) !== Number(length)) lengths = false;
    } else if (k === 'transfer-encoding') {
      codings = codings === null ? v : `${codings},${v}`;
    }
  });
  if (codings !== null) return length === null ? chunked(codings) : 'framing';
  if (length === null) return { length: null, chunked: false };
  if (!lengths || !DIGITS.test(length)) return 'framing';
  return { length: Number(length), chunked: false };
}

/**
 * Transfer-Encoding's codings (RFC 9112 §6.1, §6.3): chunked must be the
 * last and appear once, or the length cannot be known (400 and close); any
 * coding before it is one scratchd does not implement (501, and close: the
 * body is not read).
 */
function chunked(header: string): Framing {
  const codings = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
  if (codings.length === 0 || codings[codings.length - 1] !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) return 'framing';
  if (codings.length > 1) return 'transfer_coding';
  return { length: null, chunked: true };
}

/**
 * Whether a GET or HEAD may carry a body, from the first of each header
 * (two calls into uWS; reading every header costs far more). Only then is it
 * worth `framing()`. A first header that is empty hides any that follow: uWS
 * then reads no body, and neither does this.
 */
export function mayHaveBody(req: HttpRequest, contentLength: Uint8Array, transferEncoding: Uint8Array): boolean {
  return req.getHeader(contentLength) !== '' || req.getHeader(transferEncoding) !== '';
}
