/**
 * The public listener's answers other than a hit's own: a plain-text status
 * (answer), a refusal counted by reason (reject), and a refusal that waits
 * for uWS to finish parsing (refuseAfterParse). Every answer is counted by
 * method and status here, as it is written.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { countResponse, type CountedMethod } from './counters.js';
import { closes, rejections, statusText, type RejectReason } from './reject.js';
import type { HttpState } from './state.js';

/** nginx's empty_gif: a 1×1 transparent GIF, 43 bytes. */
export const GIF = Buffer.from(
  '47494638396101000100800100000000ffffff21f90401000001002c00000000010001000002024c01003b',
  'hex',
);
export const NO_CACHE = 'no-store, no-cache, must-revalidate, max-age=0';

/**
 * Arguments to uWS as bytes: it converts each string argument into a freshly
 * allocated UTF-8 copy on every call, while bytes it uses in place
 * (TextEncoder gives each its own ArrayBuffer, offset 0).
 */
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
/**
 * The status line's text and the GIF's headers, for one writeStatus call:
 * uWS writes `HTTP/1.1 ${status}\r\n` verbatim, and every call across the
 * JS/C++ boundary has a fixed cost, so one call beats one writeHeader per header.
 */
export const OK_GIF_TEXT = `200 OK\r\nContent-Type: image/gif\r\nCache-Control: ${NO_CACHE}\r\nExpires: 0`;
export const OK_GIF = bytes(OK_GIF_TEXT);

/** `corsLines`: the allowed origin's CORS header lines (cors.ts), if any. */
export function answer(
  s: HttpState, res: HttpResponse, method: CountedMethod, status: number, body?: string, corsLines?: string | null, close = s.draining,
): void {
  countResponse(s.counters, method, status);
  const text = body ?? statusText[status]!.slice(4) + '\n';
  res.writeStatus(corsLines == null ? statusText[status]! : `${statusText[status]!}\r\n${corsLines}`)
    .writeHeader('Content-Type', 'text/plain; charset=utf-8');
  if (method === 'HEAD') res.endWithoutBody(Buffer.byteLength(text), close);
  else res.end(text, close);
}

export function reject(s: HttpState, res: HttpResponse, method: CountedMethod, reason: RejectReason, corsLines?: string | null, at?: number): void {
  s.counters.rejected[reason]++;
  answerRefusal(s, res, method, reason, corsLines, at);
}

/** The refusal's answer; reject() counts the reason, refuseAfterParse() counts it when it decides. */
export function answerRefusal(
  s: HttpState, res: HttpResponse, method: CountedMethod, reason: RejectReason, corsLines?: string | null, at?: number, close = false,
): void {
  answer(s, res, method, rejections[reason].status, at === undefined ? `${reason}\n` : `${reason} at requests[${at}]\n`, corsLines,
    s.draining || close || closes(reason));
}

/**
 * Refuse and close from inside uWS's parsing (a handler, onData), on the
 * next turn. uWS goes on parsing what it has read after an answer, even one
 * that closes: a request hidden behind it (a smuggled one) would be served
 * and would keep the connection open. With this answer still pending, uWS
 * instead drops such a request and closes the connection itself. The
 * reason is counted now, the answer (status) when it is written. `close`:
 * close after it even when the reason alone would not.
 */
export function refuseAfterParse(
  s: HttpState, res: HttpResponse, method: CountedMethod, reason: RejectReason, corsLines?: string | null, close = false,
): void {
  s.counters.rejected[reason]++;
  let gone = false;
  res.onAborted(() => {
    gone = true;
  });
  res.onData(() => {}); // the body is not read
  setImmediate(() => {
    if (!gone) res.cork(() => answerRefusal(s, res, method, reason, corsLines, undefined, close));
  });
}
