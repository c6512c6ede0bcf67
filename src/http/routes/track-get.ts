/**
 * GET and HEAD /track: the pixel. Answered synchronously inside the handler,
 * which uWS corks for us. The common hit: a flavor without rules or dedup,
 * no Origin, a short query, one Line, one writeStatus.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { countResponse } from '../counters.js';
import { HOST, misframedHead, ORIGIN } from '../head.js';
import { dupOf, factsOf, recordOne, values, verdictOf } from '../hit.js';
import { GIF, OK_GIF, reject } from '../reply.js';
import type { HttpState } from '../state.js';

export function trackGet(s: HttpState, method: 'GET' | 'HEAD') {
  return (res: HttpResponse, req: HttpRequest): void => {
    const time = Date.now();
    if (misframedHead(s, res, req, method)) return;
    const { settings } = s;
    const flavor = settings.lookup(req.getHeader(HOST));
    if (flavor === undefined) return reject(s, res, method, 'unknown_flavor');
    // Browsers send Origin only on cross-origin fetches (XHR, beacons),
    // never on an <img> pixel: the common hit reads one empty header.
    const origin = req.getHeader(ORIGIN);
    const query = req.getQuery() ?? '';
    // Length in UTF-16 units is a lower bound of the byte length: only
    // count bytes when the cheap check cannot decide.
    const { maxQueryBytes } = settings;
    if (query.length > maxQueryBytes || (query.length * 3 > maxQueryBytes && Buffer.byteLength(query) > maxQueryBytes)) {
      return reject(s, res, method, 'too_long', settings.cors.lines(flavor, origin));
    }
    const d = s.dedup.of(flavor.name, flavor.dedup);
    const f = factsOf(flavor, d, res, req);
    const verdict = verdictOf(s, flavor, time, f);
    const json = values(s, flavor, query, verdict);
    if (typeof json === 'string') return reject(s, res, method, json, settings.cors.lines(flavor, origin));
    if (!recordOne(s, flavor, json, time, verdict, dupOf(s, d, f, query, false))) {
      return reject(s, res, method, 'relay_full', settings.cors.lines(flavor, origin));
    }
    if (verdict !== null) s.privacy.count(flavor.name, verdict);
    countResponse(s.counters, method, 200);
    res.writeStatus(origin === '' ? OK_GIF : settings.cors.okGif(flavor, origin, OK_GIF));
    if (method === 'HEAD') res.endWithoutBody(GIF.length, s.draining);
    else res.end(GIF, s.draining);
  };
}
