/** OPTIONS /track: a CORS preflight, answered from the flavor's allowed origins (cors.ts). */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { countResponse } from '../counters.js';
import { HOST, misframedHead, ORIGIN } from '../head.js';
import { reject } from '../reply.js';
import type { HttpState } from '../state.js';

export function preflight(s: HttpState) {
  return (res: HttpResponse, req: HttpRequest): void => {
    if (misframedHead(s, res, req, 'OTHER')) return;
    const flavor = s.settings.lookup(req.getHeader(HOST));
    if (flavor === undefined) return reject(s, res, 'OTHER', 'unknown_flavor');
    countResponse(s.counters, 'OTHER', 204);
    res.writeStatus(s.settings.cors.preflight(flavor, req.getHeader(ORIGIN)));
    if (s.draining) res.end(undefined, true);
    else res.endWithoutBody();
  };
}
