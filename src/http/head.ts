/**
 * What the routes read from a request's head: the header names they look up
 * (as bytes, see reply.ts), the method as counted, a body scratchd will not
 * read, and the facts the enrichment, privacy rules and dedup key use.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { HitHeaders } from '../privacy/policy.js';
import { peerIp } from './client-ip.js';
import type { CountedMethod } from './counters.js';
import { framing, mayHaveBody, type Framing } from './framing.js';
import type { RejectReason } from './reject.js';
import { bytes, refuseAfterParse } from './reply.js';
import type { HttpState } from './state.js';

export const HOST = bytes('host');
export const ORIGIN = bytes('origin');
const CONTENT_LENGTH = bytes('content-length');
const TRANSFER_ENCODING = bytes('transfer-encoding');

/**
 * A GET, HEAD or OPTIONS (/track, /health, /robots.txt) whose body uWS
 * would frame other than a proxy in front might: refused before anything
 * else, and closed, so no request hides in its body. A chunked body too:
 * it is never read, so a chunk extension uWS misframes (chunked.ts) would
 * go unseen and swallow the connection's next request until uWS's idle
 * timeout (RFC 9110 §9.3.1 lets a server refuse a GET's body and close).
 * The common request pays two header lookups.
 */
export function misframedHead(s: HttpState, res: HttpResponse, req: HttpRequest, method: CountedMethod): boolean {
  if (!mayHaveBody(req, CONTENT_LENGTH, TRANSFER_ENCODING)) return false;
  const f = unreadBody(framing(req));
  if (f === null) return false;
  refuseAfterParse(s, res, method, f);
  return true;
}

/** Why a body scratchd does not read is refused (misframedHead), or null. */
export function unreadBody(f: Framing): RejectReason | null {
  if (typeof f === 'string') return f;
  return f.chunked ? 'framing' : null;
}

export function countedMethod(method: string): CountedMethod {
  switch (method) {
    case 'get': return 'GET';
    case 'head': return 'HEAD';
    case 'post': return 'POST';
    default: return 'OTHER';
  }
}

/** What the enrichment and the privacy and bot rules read, while the request is valid. */
export interface Facts extends HitHeaders {
  peer: string;
  /** The last X-Forwarded-For entry: the one the proxy in front of us appended. */
  forwardedFor: string;
}

export function facts(res: HttpResponse, req: HttpRequest): Facts {
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
