/**
 * Addresses in the forms the config writes and the listeners and the request
 * path compare: below config.ts and http/, which both read them.
 *
 * Client addresses have one text form, so that a peer matches its entry in
 * `trustedProxies` however either was spelled, and the `ip` enrichment writes
 * what an operator reads and greps for: IPv4 dotted decimal, an IPv4-mapped
 * IPv6 address (a dual-stack listener's IPv4 peer) as its IPv4, other IPv6 in
 * RFC 5952 short form (`::1`). uWS reports IPv6 peers fully expanded
 * (`0000:0000:0000:0000:0000:0000:0000:0001`, `…:ffff:7f00:0001`).
 */
import ipaddr from 'ipaddr.js';

/** "host:port" → its parts; IPv6 hosts are written in brackets. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(i + 1)) };
}

/** Dotted decimal without leading zeros: already canonical, no parse needed. */
export const PLAIN_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

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
