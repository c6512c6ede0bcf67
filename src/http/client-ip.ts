/**
 * The client's address for the request path, in canonical form
 * (net/address.ts).
 */
import { canonicalIp, PLAIN_IPV4 } from '../net/address.js';

/**
 * A listener sees few distinct IPv6 peers at a time (one proxy, or each
 * client's many requests), and parsing is the costly part: remember the last
 * ones. Cleared whole when full, so scanners cannot grow it.
 */
const PEERS_REMEMBERED = 1024;
const peers = new Map<string, string>();

/** The socket peer as uWS reports it → canonical form (the text itself if it is none). */
export function peerIp(text: string): string {
  if (PLAIN_IPV4.test(text)) return text;
  let ip = peers.get(text);
  if (ip === undefined) {
    ip = canonicalIp(text) ?? text;
    if (peers.size >= PEERS_REMEMBERED) peers.clear();
    peers.set(text, ip);
  }
  return ip;
}

/**
 * The address the `ip` enrichment writes: the last X-Forwarded-For entry (the
 * one our proxy appended) when the peer is a trusted proxy and sent one, else
 * the peer. `peer` is canonical (peerIp) and `trusted` holds canonical forms
 * (config load). A forwarded entry that is no address is written as the
 * trusted proxy sent it.
 */
export function clientIp(peer: string, forwardedFor: string, trusted: ReadonlySet<string>): string {
  if (forwardedFor === '' || !trusted.has(peer)) return peer;
  return canonicalIp(forwardedFor) ?? forwardedFor;
}
