/**
 * CORS for /track: a page on an allowed origin may read the
 * answer, so Matomo's credentialed XHR sees success instead of failing and
 * resending the hit as an image. Origins are matched exactly against each
 * flavor's `cors.origins`; everything an allowed origin needs is prepared
 * once, so an answer costs one map lookup more than without an Origin header.
 */
import type { Flavor } from '../flavor.js';

/** The CORS part of the answer, as header lines for writeStatus (uWS writes the status text verbatim). */
interface Allowed {
  /** `Access-Control-Allow-Origin: …\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin` */
  readonly lines: string;
  /** The GIF's status line and headers with the CORS lines, as bytes for the GET fast path. */
  readonly okGif: Uint8Array;
}

export interface CorsCounters {
  /** OPTIONS /track requests answered. */
  preflight: number;
  /** Requests whose Origin is not allowed for their flavor (answered without CORS headers). */
  denied: number;
}

export interface Cors {
  /** The allowed origin's header lines, or null (no Origin, or a denied one: counted). */
  lines(flavor: Flavor, origin: string): string | null;
  /** The GIF answer's status text with the CORS lines when allowed, else `plain`. */
  okGif(flavor: Flavor, origin: string, plain: Uint8Array): Uint8Array;
  /** OPTIONS /track: the 204's status text and headers. */
  preflight(flavor: Flavor, origin: string): string;
  readonly counters: CorsCounters;
}

/** What a preflight allows: the methods /track answers and the one header trackers set. */
const PREFLIGHT = 'Access-Control-Allow-Methods: GET, HEAD, POST\r\n'
  + 'Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 86400';

export function makeCors(flavors: readonly Flavor[], okGifText: string, counters: CorsCounters): Cors {
  const byFlavor = new Map<Flavor, Map<string, Allowed>>();
  for (const f of flavors) {
    const m = new Map<string, Allowed>();
    for (const origin of f.corsOrigins) {
      const lines = `Access-Control-Allow-Origin: ${origin}\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin`;
      m.set(origin, { lines, okGif: new TextEncoder().encode(`${okGifText}\r\n${lines}`) });
    }
    byFlavor.set(f, m);
  }
  const allowed = (flavor: Flavor, origin: string): Allowed | undefined => {
    if (origin === '') return undefined;
    const a = byFlavor.get(flavor)!.get(origin);
    if (a === undefined) counters.denied++;
    return a;
  };
  return {
    counters,
    lines: (flavor, origin) => allowed(flavor, origin)?.lines ?? null,
    okGif: (flavor, origin, plain) => allowed(flavor, origin)?.okGif ?? plain,
    preflight(flavor, origin) {
      counters.preflight++;
      const a = allowed(flavor, origin);
      return a === undefined ? '204 No Content' : `204 No Content\r\n${a.lines}\r\n${PREFLIGHT}`;
    },
  };
}
