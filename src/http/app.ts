import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../config.js';
import { countResponse, type CountedMethod, type RejectReason, type RequestCounters } from '../stats/counters.js';
import type { Flavor } from '../flavor.js';
import { closes, rejections, statusText } from './reject.js';
import { internalFailure } from './internal.js';
import { rateLimited, type Logger } from '../log.js';
import { parseValues } from '../query/index.js';
import { httpSettings, type HttpSettings } from './settings.js';
import { makeCors } from './cors.js';
import { formValues, queryMerged, type Refusal } from './post.js';
import { bulkEntries, bulkValues } from './bulk.js';
import { multipartReader, type MultipartReader } from './multipart.js';
import { clientIp, peerIp } from './client-ip.js';
import { uws } from './uws.js';
import { judge, PrivacyState, type HitHeaders, type Verdict } from '../privacy/policy.js';
import { withoutMembers } from '../privacy/strip.js';
import { Body, BodyBudget } from './body.js';
import { ChunkTail, hasSizeLineInside, QUIET_MS } from './chunked.js';
import { framing, mayHaveBody, type Framing } from './framing.js';
import { DedupState } from '../dedup/state.js';
import type { DedupHit, FlavorDedup } from '../dedup/key.js';
import type { DedupKey } from '../threads/relay.js';

/** nginx's empty_gif: a 1×1 transparent GIF, 43 bytes. */
const GIF = Buffer.from(
  '47494638396101000100800100000000ffffff21f90401000001002c00000000010001000002024c01003b',
  'hex',
);
const NO_CACHE = 'no-store, no-cache, must-revalidate, max-age=0';
const FORM = 'application/x-www-form-urlencoded';
const MULTIPART = 'multipart/form-data';
const JSON_TYPE = 'application/json';

/**
 * Arguments to uWS as bytes: it converts each string argument into a freshly
 * allocated UTF-8 copy on every call, while bytes it uses in place
 * (TextEncoder gives each its own ArrayBuffer, offset 0).
 */
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
/**
 * The status line's text and the GIF's headers, for one writeStatus call:
 * uWS writes `HTTP/1.1 ${status}\r\n` verbatim, and every call across the
 * JS/C++ boundary has a fixed cost, so one call beats one writeHeader per header.
 */
const OK_GIF_TEXT = `200 OK\r\nContent-Type: image/gif\r\nCache-Control: ${NO_CACHE}\r\nExpires: 0`;
const OK_GIF = bytes(OK_GIF_TEXT);
const HOST = bytes('host');
const ORIGIN = bytes('origin');
const CONTENT_LENGTH = bytes('content-length');
const TRANSFER_ENCODING = bytes('transfer-encoding');

/**
 * Where a hit's accepted Lines go: the relay to the backends on the main
 * thread (threads/relay.ts). Bounded: `fits` is asked before answering.
 */
export interface Sink {
  size(flavor: string, json: Buffer, key: boolean): number;
  fits(bytes: number): boolean;
  add(flavor: string, time: number, json: Buffer, key: DedupKey | null): void;
  /** A Line refused for a full relay (counted and told to the loss tracker on the main thread). */
  refuse(flavor: string, time: number): void;
}

export interface Http {
  readonly app: TemplatedApp;
  /** From now on /health answers 503 and every answer closes its connection. */
  drain(): void;
  /** Serve with these settings from the next request on (config reload). */
  configure(config: Config): void;
}

/**
 * The public listener's routes. GET and HEAD answer synchronously inside the
 * handler (uWS corks that part for us); POST reads its body and answers from
 * onData, corked, and never after onAborted.
 */
export function makeHttp(
  config: Config, sink: Sink, counters: RequestCounters, log?: Logger, privacy = new PrivacyState(null),
  /** The process's body budget, shared by every serving thread (body.ts). */
  bodyMemory?: SharedArrayBuffer,
): Http {
  const app = uws().App();
  const settingsOf = (c: Config): HttpSettings => httpSettings(c, makeCors(c.flavors, OK_GIF_TEXT, counters.cors));
  let settings = settingsOf(config);
  let draining = false;
  const budget = new BodyBudget(config.limits.maxBodyBytesInFlight, bodyMemory);
  const logError = log === undefined ? null : rateLimited(log);
  const dedup = new DedupState(counters.dedup, false); // keys only: the main thread's stores judge them

  /** The converter threw (answered 500 `internal`, counted by reject()): log it without the input. */
  function converterFailed(input: string | Uint8Array, error: unknown): void {
    logError?.('internal', internalFailure(input, error), 'converter failed: a bug in scratchd');
  }

  /** `corsLines`: the allowed origin's CORS header lines (cors.ts), if any. */
  function answer(res: HttpResponse, method: CountedMethod, status: number, body?: string, corsLines?: string | null, close = draining): void {
    countResponse(counters, method, status);
    const text = body ?? statusText[status]!.slice(4) + '\n';
    res.writeStatus(corsLines == null ? statusText[status]! : `${statusText[status]!}\r\n${corsLines}`)
      .writeHeader('Content-Type', 'text/plain; charset=utf-8');
    if (method === 'HEAD') res.endWithoutBody(Buffer.byteLength(text), close);
    else res.end(text, close);
  }

  function reject(res: HttpResponse, method: CountedMethod, reason: RejectReason, corsLines?: string | null, at?: number): void {
    counters.rejected[reason]++;
    answerRefusal(res, method, reason, corsLines, at);
  }

  /** The refusal's answer; reject() counts the reason, refuseAfterParse() counts it when it decides. */
  function answerRefusal(res: HttpResponse, method: CountedMethod, reason: RejectReason, corsLines?: string | null, at?: number, close = false): void {
    answer(res, method, rejections[reason].status, at === undefined ? `${reason}\n` : `${reason} at requests[${at}]\n`, corsLines, draining || close || closes(reason));
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
  function refuseAfterParse(res: HttpResponse, method: CountedMethod, reason: RejectReason, corsLines?: string | null, close = false): void {
    counters.rejected[reason]++;
    let gone = false;
    res.onAborted(() => {
      gone = true;
    });
    res.onData(() => {}); // the body is not read
    setImmediate(() => {
      if (!gone) res.cork(() => answerRefusal(res, method, reason, corsLines, undefined, close));
    });
  }

  /**
   * A GET, HEAD or OPTIONS (/track, /health, /robots.txt) whose body uWS
   * would frame other than a proxy in front might: refused before anything
   * else, and closed, so no request hides in its body. A chunked body too:
   * it is never read, so a chunk extension uWS misframes (chunked.ts) would
   * go unseen and swallow the connection's next request until uWS's idle
   * timeout (RFC 9110 §9.3.1 lets a server refuse a GET's body and close).
   * The common request pays two header lookups.
   */
  function misframedHead(res: HttpResponse, req: HttpRequest, method: CountedMethod): boolean {
    if (!mayHaveBody(req, CONTENT_LENGTH, TRANSFER_ENCODING)) return false;
    const f = unreadBody(framing(req));
    if (f === null) return false;
    refuseAfterParse(res, method, f);
    return true;
  }

  /** The query → Values JSON with the hit's server-side pairs, or the reason it is refused. */
  function values(flavor: Flavor, query: string, verdict: Verdict | null): Buffer | RejectReason {
    const json = parseValues(query, settings.limits, verdict?.pairs);
    if ('reason' in json) {
      if (json.reason === 'internal') converterFailed(query, json.error);
      return json.reason;
    }
    return checked(flavor, json);
  }

  /** The flavor's JSON Schema, if it has one. */
  function checked(flavor: Flavor, json: Buffer): Buffer | RejectReason {
    if (flavor.validate !== null && !flavor.validate(JSON.parse(json.toString()))) return 'schema';
    return json;
  }

  /**
   * The flavor's enrichment, privacy and bot rules for this hit (privacy/policy.ts), read
   * while the request is valid; null for a flavor with none of them (no header read).
   */
  function verdictOf(flavor: Flavor, time: number, f: Facts | null): Verdict | null {
    if (f === null || (flavor.enrich === null && flavor.privacy === null && flavor.bots === null)) return null;
    return judge(flavor.name, flavor.timeZone, flavor.day(time), flavor, privacy, f, clientIp(f.peer, f.forwardedFor, settings.trusted), time);
  }

  /** The headers the flavor's rules and dedup key read, while the request is valid; null when none. */
  function factsOf(flavor: Flavor, d: FlavorDedup | null, res: HttpResponse, req: HttpRequest): Facts | null {
    if (flavor.enrich === null && flavor.privacy === null && flavor.bots === null && !(d?.spec.headers ?? false)) return null;
    return facts(res, req);
  }

  /** The hit's dedup key so far (dedup/), for a flavor with dedup on. */
  function dupOf(d: FlavorDedup | null, f: Facts | null, query: string, post: boolean): DedupHit | null {
    if (d === null) return null;
    const ip = f === null || !d.spec.ip ? '' : clientIp(f.peer, f.forwardedFor, settings.trusted);
    return post ? dedup.post(d, ip, f?.userAgent ?? '', query) : dedup.get(d, ip, f?.userAgent ?? '', query);
  }

  /**
   * Hand the Lines of a hit the rules let through to the relay, each with
   * its dedup key (the main thread judges repeats: one store for all
   * threads). All or none: false when the relay cannot take them all now;
   * then they are refused, counted and told to the loss tracker.
   */
  function record(flavor: Flavor, jsons: readonly Buffer[], time: number, verdict: Verdict | null, dup: DedupHit | null): boolean {
    if (verdict !== null && verdict.skip !== null) return true;
    const keys: (DedupKey | null)[] = [];
    const out: Buffer[] = [];
    let bytes = 0;
    for (const json of jsons) {
      let key: DedupKey | null = null;
      if (dup !== null) {
        key = { hi: 0, lo: 0 };
        dup.keyOf(json, key);
      }
      const line = verdict === null || verdict.strip === null ? json : withoutMembers(json, verdict.strip);
      keys.push(key);
      out.push(line);
      bytes += sink.size(flavor.name, line, key !== null);
    }
    if (!sink.fits(bytes)) {
      for (let i = 0; i < out.length; i++) sink.refuse(flavor.name, time);
      return false;
    }
    for (let i = 0; i < out.length; i++) sink.add(flavor.name, time, out[i]!, keys[i]!);
    return true;
  }

  /** record() for the one Line of a GET, without its arrays: the common hit. */
  function recordOne(flavor: Flavor, json: Buffer, time: number, verdict: Verdict | null, dup: DedupHit | null): boolean {
    if (verdict !== null && verdict.skip !== null) return true;
    let key: DedupKey | null = null;
    if (dup !== null) {
      key = oneKey;
      dup.keyOf(json, key);
    }
    const line = verdict === null || verdict.strip === null ? json : withoutMembers(json, verdict.strip);
    if (!sink.fits(sink.size(flavor.name, line, key !== null))) {
      sink.refuse(flavor.name, time);
      return false;
    }
    sink.add(flavor.name, time, line, key);
    return true;
  }
  const oneKey: DedupKey = { hi: 0, lo: 0 };

  function track(method: 'GET' | 'HEAD') {
    return (res: HttpResponse, req: HttpRequest): void => {
      const time = Date.now();
      if (misframedHead(res, req, method)) return;
      const flavor = settings.lookup(req.getHeader(HOST));
      if (flavor === undefined) return reject(res, method, 'unknown_flavor');
      // Browsers send Origin only on cross-origin fetches (XHR, beacons),
      // never on an <img> pixel: the common hit reads one empty header.
      const origin = req.getHeader(ORIGIN);
      const query = req.getQuery() ?? '';
      // Length in UTF-16 units is a lower bound of the byte length: only
      // count bytes when the cheap check cannot decide.
      const { maxQueryBytes } = settings;
      if (query.length > maxQueryBytes || (query.length * 3 > maxQueryBytes && Buffer.byteLength(query) > maxQueryBytes)) {
        return reject(res, method, 'too_long', settings.cors.lines(flavor, origin));
      }
      const d = dedup.of(flavor.name, flavor.dedup);
      const f = factsOf(flavor, d, res, req);
      const verdict = verdictOf(flavor, time, f);
      const json = values(flavor, query, verdict);
      if (typeof json === 'string') return reject(res, method, json, settings.cors.lines(flavor, origin));
      if (!recordOne(flavor, json, time, verdict, dupOf(d, f, query, false))) {
        return reject(res, method, 'relay_full', settings.cors.lines(flavor, origin));
      }
      if (verdict !== null) privacy.count(flavor.name, verdict);
      countResponse(counters, method, 200);
      res.writeStatus(origin === '' ? OK_GIF : settings.cors.okGif(flavor, origin, OK_GIF));
      if (method === 'HEAD') res.endWithoutBody(GIF.length, draining);
      else res.end(GIF, draining);
    };
  }

  app.get('/track', track('GET'));
  app.head('/track', track('HEAD'));

  app.post('/track', (res, req) => {
    const time = Date.now();
    // First: a request that is refused for its framing is closed, whatever else is wrong with it.
    const frame = framing(req);
    if (typeof frame === 'string') return refuseAfterParse(res, 'POST', frame);
    // Refused before its body is read: a chunked body is closed on, since
    // a chunk extension uWS misreads (chunked.ts) would otherwise hold the
    // connection and swallow its next request.
    const refuse = (reason: RejectReason, cors?: string | null): void => (frame.chunked
      ? refuseAfterParse(res, 'POST', reason, cors, true)
      : reject(res, 'POST', reason, cors));
    const flavor = settings.lookup(req.getHeader(HOST));
    if (flavor === undefined) return refuse('unknown_flavor');
    const corsLines = settings.cors.lines(flavor, req.getHeader(ORIGIN));
    const contentType = req.getHeader('content-type');
    const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
    if (type !== FORM && type !== 'text/plain' && type !== MULTIPART && !(type === JSON_TYPE && flavor.bulk)) {
      return refuse('bad_content_type', corsLines);
    }
    const { maxBodyBytes } = settings;
    if (frame.length !== null && frame.length > maxBodyBytes) return reject(res, 'POST', 'body_too_large', corsLines);
    // Rails' params: the URL query counts as much as the body.
    const query = req.getQuery() ?? '';
    if (Buffer.byteLength(query) > settings.maxQueryBytes) return refuse('too_long', corsLines);
    let multipart: MultipartReader | null = null;
    if (type === MULTIPART) {
      const reader = multipartReader(contentType, settings.limits);
      if (typeof reader === 'string') return refuse(reader, corsLines);
      multipart = reader;
    }
    // The request is only valid now, not in onData.
    const d = dedup.of(flavor.name, flavor.dedup);
    const f = factsOf(flavor, d, res, req);
    const verdict = verdictOf(flavor, time, f);
    const dup = dupOf(d, f, query, true);
    const extra = verdict?.pairs;
    let done = false;
    let aborted = false;
    const body = new Body(budget, maxBodyBytes, frame.length);
    /** Only for a chunked body: its data's last bytes, to see uWS misframe it. */
    const tail = frame.chunked ? new ChunkTail() : null;
    let quiet: NodeJS.Timeout | null = null;

    /**
     * Answer once, corked, unless the client is gone; the body's memory is
     * handed back either way. A refusal that closes waits for uWS to finish
     * parsing what it has read (refuseAfterParse). `close`: a refusal
     * before the end of a chunked body closes too, as one before its start
     * does (refuse).
     */
    const finish = (result: Buffer[] | Refusal, close = false): void => {
      if (done) return;
      done = true;
      stop();
      if (!Array.isArray(result) && (close || closes(result.reason))) {
        counters.rejected[result.reason]++;
        setImmediate(() => {
          if (!aborted) res.cork(() => answerRefusal(res, 'POST', result.reason, corsLines, result.at, close));
        });
        return;
      }
      res.cork(() => {
        if (!Array.isArray(result)) return reject(res, 'POST', result.reason, corsLines, result.at);
        if (!record(flavor, result, time, verdict, dup)) return reject(res, 'POST', 'relay_full', corsLines);
        if (verdict !== null) privacy.count(flavor.name, verdict);
        countResponse(counters, 'POST', 204);
        res.writeStatus(corsLines === null ? '204 No Content' : `204 No Content\r\n${corsLines}`)
          .writeHeader('Cache-Control', NO_CACHE)
          .writeHeader('Expires', '0');
        // uWS can only close the connection after an answer with a
        // Content-Length; a 204 should carry none, so only while draining.
        if (draining) res.end(undefined, true);
        else res.endWithoutBody();
      });
    };
    const stop = (): void => {
      body.release();
      if (quiet !== null) clearTimeout(quiet);
      quiet = null;
    };
    const one = (json: Buffer | RejectReason): Buffer[] | Refusal => {
      if (typeof json === 'string') return { reason: json };
      const c = checked(flavor, json);
      return typeof c === 'string' ? { reason: c } : [c];
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
        converterFailed(body.bytes(), err);
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
      if (multipart !== null) {
        // Fed whole, once: busboy keeps each piece it is given as its own buffer.
        multipart.write(bytes);
        return multipart.end((post) => guarded(() => {
          finish(typeof post === 'string' ? { reason: post } : one(queryMerged(query, post, settings.limits, extra)));
        }));
      }
      if (flavor.bulk) {
        const entries = bulkEntries(bytes);
        if (entries !== null) {
          return finish(bulkValues(entries, settings.limits, extra, (json) => checked(flavor, json)));
        }
      }
      if (type === JSON_TYPE) return finish({ reason: 'bad_content_type' });
      finish(one(formValues(query, bytes, settings.limits, extra)));
    }));
  });

  app.options('/track', (res, req) => {
    if (misframedHead(res, req, 'OTHER')) return;
    const flavor = settings.lookup(req.getHeader(HOST));
    if (flavor === undefined) return reject(res, 'OTHER', 'unknown_flavor');
    countResponse(counters, 'OTHER', 204);
    res.writeStatus(settings.cors.preflight(flavor, req.getHeader(ORIGIN)));
    if (draining) res.end(undefined, true);
    else res.endWithoutBody();
  });

  // Crawlers that honour it stay off /track: nothing here is content.
  app.get('/robots.txt', (res, req) => {
    if (!misframedHead(res, req, 'GET')) answer(res, 'GET', 200, ROBOTS_TXT);
  });
  app.head('/robots.txt', (res, req) => {
    if (!misframedHead(res, req, 'HEAD')) answer(res, 'HEAD', 200, ROBOTS_TXT);
  });
  app.get('/health', (res, req) => {
    if (!misframedHead(res, req, 'GET')) answer(res, 'GET', draining ? 503 : 200, draining ? 'draining\n' : 'ok\n');
  });
  app.head('/health', (res, req) => {
    if (!misframedHead(res, req, 'HEAD')) answer(res, 'HEAD', draining ? 503 : 200);
  });
  app.any('/*', (res, req) => {
    const method = countedMethod(req.getMethod());
    const refused = unreadBody(framing(req));
    if (refused !== null) return refuseAfterParse(res, method, refused);
    answer(res, method, 404);
  });

  return {
    app,
    drain() {
      draining = true;
    },
    configure(next) {
      settings = settingsOf(next);
      budget.max = next.limits.maxBodyBytesInFlight;
      dedup.retain(next.flavors);
    },
  };
}

/** Why a body scratchd does not read is refused (misframedHead), or null. */
function unreadBody(f: Framing): RejectReason | null {
  if (typeof f === 'string') return f;
  return f.chunked ? 'framing' : null;
}

function countedMethod(method: string): CountedMethod {
  switch (method) {
    case 'get': return 'GET';
    case 'head': return 'HEAD';
    case 'post': return 'POST';
    default: return 'OTHER';
  }
}

const ROBOTS_TXT = 'User-agent: *\nDisallow: /\n';

/** What the enrichment and the privacy and bot rules read, while the request is valid. */
interface Facts extends HitHeaders {
  peer: string;
  /** The last X-Forwarded-For entry: the one the proxy in front of us appended. */
  forwardedFor: string;
}

function facts(res: HttpResponse, req: HttpRequest): Facts {
  const f: Facts = {
    peer: peerIp(Buffer.from(res.getRemoteAddressAsText()).toString()),
    forwardedFor: '', secGpc: '', dnt: '', secPurpose: '', purpose: '', xPurpose: '', xMoz: '',
    // getHeader, not forEach: forEach hands non-ASCII bytes over already replaced by U+FFFD.
    userAgent: utf8Header(req.getHeader('user-agent')),
    referer: utf8Header(req.getHeader('referer')),
  };
  // One pass over the other headers instead of a lookup per name.
  req.forEach((k, v) => {
    switch (k) {
      case 'x-forwarded-for': f.forwardedFor = v.slice(v.lastIndexOf(',') + 1).trim(); break;
      case 'sec-gpc': f.secGpc = v; break;
      case 'dnt': f.dnt = v; break;
      case 'sec-purpose': f.secPurpose = v; break;
      case 'purpose': f.purpose = v; break;
      case 'x-purpose': f.xPurpose = v; break;
      case 'x-moz': f.xMoz = v; break;
    }
  });
  return f;
}

/**
 * uWS.js hands header values over one byte per character (latin1), so a
 * User-Agent sent as UTF-8 would be stored as mojibake ("é" → "Ã©"). Decode
 * the bytes as UTF-8; invalid sequences become U+FFFD.
 */
function utf8Header(v: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(v) ? v : Buffer.from(v, 'latin1').toString('utf8');
}
