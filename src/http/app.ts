import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Backend } from '../backend.js';
import type { Config } from '../config.js';
import { countResponse, type CountedMethod, type RejectReason, type RequestCounters } from '../stats/counters.js';
import { isoTime } from '../day.js';
import { flavorLookup, type Flavor } from '../flavor.js';
import type { Line } from '../line.js';
import { rejections, statusText } from './reject.js';
import { parseValues, type QueryLimits } from '../query/index.js';
import { uws } from './uws.js';

/** nginx's empty_gif: a 1×1 transparent GIF, 43 bytes. */
const GIF = Buffer.from(
  '47494638396101000100800100000000ffffff21f90401000001002c00000000010001000002024c01003b',
  'hex',
);
const NO_CACHE = 'no-store, no-cache, must-revalidate, max-age=0';
const FORM = 'application/x-www-form-urlencoded';

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
const OK_GIF = bytes(`200 OK\r\nContent-Type: image/gif\r\nCache-Control: ${NO_CACHE}\r\nExpires: 0`);
const HOST = bytes('host');

export interface Http {
  readonly app: TemplatedApp;
  /** From now on /health answers 503 and every answer closes its connection. */
  drain(): void;
}

/**
 * The public listener's routes. GET and HEAD answer synchronously inside the
 * handler (uWS corks that part for us); POST reads its body and answers from
 * onData, corked, and never after onAborted.
 */
export function makeHttp(config: Config, backends: readonly Backend[], counters: RequestCounters): Http {
  const app = uws().App();
  const lookup = flavorLookup(config.flavors);
  const { maxQueryBytes, maxBodyBytes } = config.limits;
  const limits: QueryLimits = config.limits;
  const trusted = new Set(config.trustedProxies);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let draining = false;

  function answer(res: HttpResponse, method: CountedMethod, status: number, body?: string): void {
    countResponse(counters, method, status);
    const text = body ?? statusText[status]!.slice(4) + '\n';
    res.writeStatus(statusText[status]!).writeHeader('Content-Type', 'text/plain; charset=utf-8');
    if (method === 'HEAD') res.endWithoutBody(Buffer.byteLength(text), draining);
    else res.end(text, draining);
  }

  function reject(res: HttpResponse, method: CountedMethod, reason: RejectReason): void {
    counters.rejected[reason]++;
    answer(res, method, rejections[reason].status, `${reason}\n`);
  }

  /** Hand the Line to every backend; each counts its own drops. */
  function accept(flavor: Flavor, json: Buffer, time: number): void {
    const line: Line = { flavor, json, time };
    for (let i = 0; i < backends.length; i++) backends[i]!.send(line);
  }

  /** The query or body → Values JSON, or the reason it is refused. */
  function values(flavor: Flavor, query: string, time: number, facts: Facts | null): Buffer | RejectReason {
    const json = parseValues(query, limits, facts === null ? undefined : enrichment(flavor, time, facts));
    if ('reason' in json) return json.reason;
    if (flavor.validate !== null && !flavor.validate(JSON.parse(json.toString()))) return 'schema';
    return json;
  }

  function enrichment(flavor: Flavor, time: number, facts: Facts): string[] {
    const e = flavor.enrich!;
    const pairs: string[] = [];
    if (e.time !== undefined) pairs.push(e.time, isoTime(time, flavor.timeZone));
    if (e.ip !== undefined) pairs.push(e.ip, trusted.has(facts.peer) && facts.forwardedFor !== '' ? facts.forwardedFor : facts.peer);
    if (e.userAgent !== undefined) pairs.push(e.userAgent, facts.userAgent);
    if (e.referer !== undefined) pairs.push(e.referer, facts.referer);
    return pairs;
  }

  function track(method: 'GET' | 'HEAD') {
    return (res: HttpResponse, req: HttpRequest): void => {
      const time = Date.now();
      const flavor = lookup(req.getHeader(HOST));
      if (flavor === undefined) return reject(res, method, 'unknown_flavor');
      const query = req.getQuery() ?? '';
      // Length in UTF-16 units is a lower bound of the byte length: only
      // count bytes when the cheap check cannot decide.
      if (query.length > maxQueryBytes || (query.length * 3 > maxQueryBytes && Buffer.byteLength(query) > maxQueryBytes)) {
        return reject(res, method, 'too_long');
      }
      const json = values(flavor, query, time, flavor.enrich === null ? null : facts(res, req));
      if (typeof json === 'string') return reject(res, method, json);
      accept(flavor, json, time);
      countResponse(counters, method, 200);
      res.writeStatus(OK_GIF);
      if (method === 'HEAD') res.endWithoutBody(GIF.length, draining);
      else res.end(GIF, draining);
    };
  }

  app.get('/track', track('GET'));
  app.head('/track', track('HEAD'));

  app.post('/track', (res, req) => {
    const time = Date.now();
    const flavor = lookup(req.getHeader(HOST));
    if (flavor === undefined) return reject(res, 'POST', 'unknown_flavor');
    const type = req.getHeader('content-type').split(';', 1)[0]!.trim().toLowerCase();
    if (type !== FORM && type !== 'text/plain') return reject(res, 'POST', 'bad_content_type');
    if (Number(req.getHeader('content-length')) > maxBodyBytes) return reject(res, 'POST', 'body_too_large');
    // The request is only valid now, not in onData.
    const requestFacts = flavor.enrich === null ? null : facts(res, req);
    let done = false;
    let size = 0;
    const chunks: Buffer[] = [];
    res.onAborted(() => {
      done = true;
    });
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > maxBodyBytes) {
        done = true;
        return res.cork(() => reject(res, 'POST', 'body_too_large'));
      }
      // uWS reuses the chunk's memory after this callback returns.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      done = true;
      let body: string;
      try {
        body = utf8.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      } catch {
        return res.cork(() => reject(res, 'POST', 'invalid_utf8'));
      }
      const json = values(flavor, body, time, requestFacts);
      res.cork(() => {
        if (typeof json === 'string') return reject(res, 'POST', json);
        accept(flavor, json, time);
        countResponse(counters, 'POST', 204);
        res.writeStatus('204 No Content')
          .writeHeader('Cache-Control', NO_CACHE)
          .writeHeader('Expires', '0');
        // uWS can only close the connection after an answer with a
        // Content-Length; a 204 should carry none, so only while draining.
        if (draining) res.end(undefined, true);
        else res.endWithoutBody();
      });
    });
  });

  app.get('/health', (res) => answer(res, 'GET', draining ? 503 : 200, draining ? 'draining\n' : 'ok\n'));
  app.head('/health', (res) => answer(res, 'HEAD', draining ? 503 : 200));
  app.any('/*', (res, req) => answer(res, countedMethod(req.getMethod()), 404));

  return {
    app,
    drain() {
      draining = true;
    },
  };
}

function countedMethod(method: string): CountedMethod {
  switch (method) {
    case 'get': return 'GET';
    case 'head': return 'HEAD';
    case 'post': return 'POST';
    default: return 'OTHER';
  }
}

/** What enrichment may add, read while the request is valid. */
interface Facts {
  peer: string;
  /** The last X-Forwarded-For entry: the one the proxy in front of us appended. */
  forwardedFor: string;
  userAgent: string;
  referer: string;
}

function facts(res: HttpResponse, req: HttpRequest): Facts {
  let forwarded = '';
  req.forEach((k, v) => {
    if (k === 'x-forwarded-for') forwarded = v;
  });
  return {
    peer: Buffer.from(res.getRemoteAddressAsText()).toString().replace(/^::ffff:/, ''),
    forwardedFor: forwarded.slice(forwarded.lastIndexOf(',') + 1).trim(),
    userAgent: utf8Header(req.getHeader('user-agent')),
    referer: utf8Header(req.getHeader('referer')),
  };
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
