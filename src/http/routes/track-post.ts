/**
 * POST /track: the hit's head is checked inside the handler, while the
 * request is valid; its body is read in onData and answered from there,
 * corked, and never after onAborted.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { DedupHit } from '../../dedup/key.js';
import type { Flavor } from '../../flavor.js';
import type { Verdict } from '../../privacy/policy.js';
import { Body } from '../body.js';
import { ChunkTail, hasSizeLineInside, QUIET_MS } from '../chunked.js';
import { bodyType, MULTIPART, parseBody } from '../content-type.js';
import { countResponse } from '../counters.js';
import { framing } from '../framing.js';
import { HOST, ORIGIN } from '../head.js';
import { dupOf, factsOf, record, verdictOf } from '../hit.js';
import { multipartReader, type MultipartReader } from '../multipart.js';
import type { Refusal } from '../post.js';
import { closes, type RejectReason } from '../reject.js';
import { answerRefusal, NO_CACHE, refuseAfterParse, reject } from '../reply.js';
import { converterFailed, type HttpState } from '../state.js';

export function trackPost(s: HttpState) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const time = Date.now();
    // First: a request that is refused for its framing is closed, whatever else is wrong with it.
    const frame = framing(req);
    if (typeof frame === 'string') return refuseAfterParse(s, res, 'POST', frame);
    const { settings } = s;
    const flavor = settings.lookup(req.getHeader(HOST));
    if (flavor === undefined) return refuseHead(s, res, frame.chunked, 'unknown_flavor');
    const corsLines = settings.cors.lines(flavor, req.getHeader(ORIGIN));
    const contentType = req.getHeader('content-type');
    const type = bodyType(contentType, flavor);
    if (type === null) return refuseHead(s, res, frame.chunked, 'bad_content_type', corsLines);
    if (frame.length !== null && frame.length > settings.maxBodyBytes) return reject(s, res, 'POST', 'body_too_large', corsLines);
    // Rails' params: the URL query counts as much as the body.
    const query = req.getQuery() ?? '';
    if (Buffer.byteLength(query) > settings.maxQueryBytes) return refuseHead(s, res, frame.chunked, 'too_long', corsLines);
    let multipart: MultipartReader | null = null;
    if (type === MULTIPART) {
      const reader = multipartReader(contentType, settings.limits);
      if (typeof reader === 'string') return refuseHead(s, res, frame.chunked, reader, corsLines);
      multipart = reader;
    }
    // The request is only valid now, not in onData.
    const d = s.dedup.of(flavor.name, flavor.dedup);
    const f = factsOf(flavor, d, res, req);
    const verdict = verdictOf(s, flavor, time, f);
    const dup = dupOf(s, d, f, query, true);
    readBody(s, res, time, frame.length, frame.chunked, flavor, corsLines, type, query, multipart, verdict, dup);
  };
}

/**
 * Refused before its body is read: a chunked body is closed on, since a
 * chunk extension uWS misreads (chunked.ts) would otherwise hold the
 * connection and swallow its next request.
 */
function refuseHead(s: HttpState, res: HttpResponse, chunked: boolean, reason: RejectReason, cors?: string | null): void {
  if (chunked) refuseAfterParse(s, res, 'POST', reason, cors, true);
  else reject(s, res, 'POST', reason, cors);
}

/** Read the body piece by piece as uWS hands it over, then record its Lines and answer, once. */
function readBody(
  s: HttpState, res: HttpResponse, time: number, length: number | null, chunked: boolean, flavor: Flavor, corsLines: string | null,
  type: string, query: string, multipart: MultipartReader | null, verdict: Verdict | null, dup: DedupHit | null,
): void {
  const extra = verdict?.pairs;
  let done = false;
  let aborted = false;
  const body = new Body(s.budget, s.settings.maxBodyBytes, length);
  /** Only for a chunked body: its data's last bytes, to see uWS misframe it. */
  const tail = chunked ? new ChunkTail() : null;
  let quiet: NodeJS.Timeout | null = null;

  /**
   * Answer once, corked, unless the client is gone; the body's memory is
   * handed back either way. A refusal that closes waits for uWS to finish
   * parsing what it has read (refuseAfterParse). `close`: a refusal
   * before the end of a chunked body closes too, as one before its start
   * does (refuseHead).
   */
  const finish = (result: Buffer[] | Refusal, close = false): void => {
    if (done) return;
    done = true;
    stop();
    if (!Array.isArray(result) && (close || closes(result.reason))) {
      s.counters.rejected[result.reason]++;
      setImmediate(() => {
        if (!aborted) res.cork(() => answerRefusal(s, res, 'POST', result.reason, corsLines, result.at, close));
      });
      return;
    }
    res.cork(() => answerBody(s, res, result, flavor, time, verdict, dup, corsLines));
  };
  const stop = (): void => {
    body.release();
    if (quiet !== null) clearTimeout(quiet);
    quiet = null;
  };
  /** QUIET_MS after data that ends with CRLF, and nothing more: uWS misframed it (chunked.ts). */
  const misframed = (): void => {
    quiet = null;
    finish({ reason: 'chunk_extension' });
  };

  res.onAborted(() => {
    done = true;
    aborted = true;
    stop();
  });
  // A bug in reading a body (busboy, bulk, merge) answers 500, never
  // throws into uWS or an event emitter, which would end the process.
  const guarded = (read: () => void): void => {
    try {
      read();
    } catch (err) {
      converterFailed(s, body.bytes(), err);
      finish({ reason: 'internal' });
    }
  };
  res.onData((chunk, isLast) => guarded(() => {
    if (done) return;
    const piece = new Uint8Array(chunk);
    const refused = body.add(piece, isLast);
    if (refused !== null) return finish({ reason: refused }, tail !== null && !isLast);
    dup?.chunk(chunk);
    if (!isLast) {
      if (tail === null) return;
      if (tail.endsWithCrlf(piece)) {
        if (quiet === null) quiet = setTimeout(misframed, QUIET_MS);
        else quiet.refresh();
      } else if (quiet !== null) {
        clearTimeout(quiet);
        quiet = null;
      }
      return;
    }
    const bytes = body.bytes();
    if (tail !== null && hasSizeLineInside(bytes)) return finish({ reason: 'chunk_extension' });
    parseBody(s, bytes, flavor, type, query, multipart, extra, finish, guarded);
  }));
}

/** The whole body's answer, corked: its Lines recorded and 204, or its refusal. */
function answerBody(
  s: HttpState, res: HttpResponse, result: Buffer[] | Refusal, flavor: Flavor, time: number, verdict: Verdict | null,
  dup: DedupHit | null, corsLines: string | null,
): void {
  if (!Array.isArray(result)) return reject(s, res, 'POST', result.reason, corsLines, result.at);
  if (!record(s, flavor, result, time, verdict, dup)) return reject(s, res, 'POST', 'relay_full', corsLines);
  if (verdict !== null) s.privacy.count(flavor.name, verdict);
  countResponse(s.counters, 'POST', 204);
  res.writeStatus(corsLines === null ? '204 No Content' : `204 No Content\r\n${corsLines}`)
    .writeHeader('Cache-Control', NO_CACHE)
    .writeHeader('Expires', '0');
  // uWS can only close the connection after an answer with a
  // Content-Length; a 204 should carry none, so only while draining.
  if (s.draining) res.end(undefined, true);
  else res.endWithoutBody();
}
