// The one place uWebSockets.js is loaded. uWS reads its request-head limit
// (UWS_HTTP_MAX_HEADERS_SIZE) once, when its binary loads, and has no other
// way to set it; so the limit must be known before anything loads uWS, and
// every module gets uWS from here (type-only imports of 'uWebSockets.js'
// are fine: they load nothing).
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

export type Uws = typeof UWS;

const require = createRequire(import.meta.url);
let loaded: { uws: Uws; maxHeadBytes: number } | undefined;

/**
 * Load uWS with room for request heads (request line and headers) of up to
 * `maxHeadBytes`; longer ones it answers 431 itself. Once per process: a
 * second call must ask for the same limit.
 */
export function loadUws(maxHeadBytes: number): Uws {
  if (loaded !== undefined) {
    if (loaded.maxHeadBytes !== maxHeadBytes) {
      throw new Error(`uWebSockets.js is loaded with a ${loaded.maxHeadBytes}-byte head limit, not ${maxHeadBytes}`);
    }
    return loaded.uws;
  }
  if (!Number.isInteger(maxHeadBytes) || maxHeadBytes <= 0) throw new Error(`bad head limit ${maxHeadBytes}`);
  if (require.cache[require.resolve('uWebSockets.js')] !== undefined) {
    throw new Error('uWebSockets.js was loaded before loadUws(): its head limit is not ours');
  }
  process.env.UWS_HTTP_MAX_HEADERS_SIZE = String(maxHeadBytes);
  loaded = { uws: require('uWebSockets.js') as Uws, maxHeadBytes };
  return loaded.uws;
}

/** uWS as `loadUws` loaded it; throws when nothing has loaded it yet. */
export function uws(): Uws {
  if (loaded === undefined) throw new Error('uWebSockets.js used before loadUws(maxHeadBytes)');
  return loaded.uws;
}
