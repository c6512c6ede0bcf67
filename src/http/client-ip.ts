/**
 * Client addresses in one text form, so that a peer matches its entry in
 * `trustedProxies` however either was spelled, and the `ip` enrichment writes
 * what an operator reads and greps for: IPv4 dotted decimal, an IPv4-mapped
 * IPv6 address (a dual-stack listener's IPv4 peer) as its IPv4, other IPv6 in
 * RFC 5952 short form (`::1`). uWS reports IPv6 peers fully expanded
 * (`0000:0000:0000:0000:0000:0000:0000:0001`, `…:ffff:7f00:0001`).
 */
import ipaddr from 'ipaddr.js';

/** Dotted decimal without leading zeros: already canonical, no parse needed. */
const PLAIN_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * `text` in canonical form, or null when it is no IP address. IPv4 only in
 * four-part decimal: `127.1` or `0x7f.0.0.1` are no addresses here.
 */
export function canonicalIp(text: string): string | null {
  if (PLAIN_IPV4.test(text)) return text;
  if (!ipaddr.IPv6.isValid(text)) return null;
  const v6 = ipaddr.IPv6.parse(text);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toRFC5952String();
}

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
