/**
 * `privacy.ip: "masked"`: the client address with its last bytes zeroed, as
 * Matomo masks it (`ipAddressMaskLength`). `bytes` 1–4: IPv4 loses its last
 * 1–4 bytes; IPv6 keeps its first 64, 48, 24 or 0 bits. The address comes in
 * canonical form (http/client-ip.ts: an IPv4-mapped peer is already its IPv4,
 * so it is masked as IPv4). Text that is no address is written as "": there is
 * nothing in it that could be masked safely.
 */
import ipaddr from 'ipaddr.js';
import type { MaskBytes } from './config.js';

const IPV6_KEEP_BITS: Record<MaskBytes, number> = { 1: 64, 2: 48, 3: 24, 4: 0 };
/** Dotted decimal without leading zeros: the canonical IPv4 form (http/client-ip.ts). */
const PLAIN_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const ZEROS: Record<MaskBytes, string> = { 1: '.0', 2: '.0.0', 3: '.0.0.0', 4: '0.0.0.0' };

export function maskIp(ip: string, bytes: MaskBytes): string {
  // The common case, a canonical IPv4, masked in its text: it is on every
  // hit's path, and parsing it with ipaddr.js costs several times the rest
  // of the privacy rules.
  if (PLAIN_IPV4.test(ip)) {
    if (bytes === 4) return ZEROS[4];
    let end = -1;
    for (let kept = 0; kept < 4 - bytes; kept++) end = ip.indexOf('.', end + 1);
    return ip.slice(0, end) + ZEROS[bytes];
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) {
    const octets = ipaddr.IPv4.parse(ip).octets;
    for (let i = 4 - bytes; i < 4; i++) octets[i] = 0;
    return octets.join('.');
  }
  if (!ipaddr.IPv6.isValid(ip)) return '';
  const v6 = ipaddr.IPv6.parse(ip);
  if (v6.isIPv4MappedAddress()) return maskIp(v6.toIPv4Address().toString(), bytes);
  const keep = IPV6_KEEP_BITS[bytes];
  const parts = v6.parts; // eight 16-bit groups
  for (let g = 0; g < 8; g++) {
    const first = g * 16;
    if (first >= keep) parts[g] = 0;
    else if (first + 16 > keep) parts[g] = parts[g]! & (0xffff << (16 - (keep - first))) & 0xffff;
  }
  return new ipaddr.IPv6(parts).toRFC5952String();
}
