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

export function maskIp(ip: string, bytes: MaskBytes): string {
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
