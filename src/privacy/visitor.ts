/**
 * Keyed hashes with the day's salt: the cookieless visitor id (client IP,
 * User-Agent and flavor, as Plausible derives its ids) and `privacy.ip:
 * "hashed"`. HMAC-SHA-256 truncated to 16 hex digits (64 bits): enough to tell
 * a day's visitors apart, and worthless once the salt is destroyed.
 *
 * A visitor sends many hits a day: the last ids are remembered per flavor day
 * (bounded maps, cleared whole when full or when the day turns), so a repeat
 * hit costs map lookups instead of an HMAC. Visitor ids are remembered by
 * User-Agent, then IP, not by the text hashed: the User-Agent string already
 * carries its hash from the bot check's lookup, where a joined key would be
 * a new long string to copy and hash on every hit.
 */
import { createHmac } from 'node:crypto';

const REMEMBERED = 4096;

export class DayHasher {
  private day = '';
  private readonly seen = new Map<string, string>();
  private readonly visitors = new Map<string, Map<string, string>>();
  private visitorCount = 0;

  /** The 16-hex-digit keyed hash of `text` under `salt`, remembered for `day`. */
  hash(day: string, salt: Buffer, text: string): string {
    this.turn(day);
    let id = this.seen.get(text);
    if (id === undefined) {
      id = createHmac('sha256', salt).update(text).digest('hex').slice(0, 16);
      if (this.seen.size >= REMEMBERED) this.seen.clear();
      this.seen.set(text, id);
    }
    return id;
  }

  /** The visitor id of `ip` and `userAgent` in `flavor` under `salt`: the hash of visitorText, remembered for `day`. */
  visitor(day: string, salt: Buffer, ip: string, userAgent: string, flavor: string): string {
    this.turn(day);
    let byIp = this.visitors.get(userAgent);
    let id = byIp?.get(ip);
    if (id === undefined) {
      id = createHmac('sha256', salt).update(visitorText(ip, userAgent, flavor)).digest('hex').slice(0, 16);
      if (this.visitorCount >= REMEMBERED) {
        this.visitors.clear();
        this.visitorCount = 0;
        byIp = undefined;
      }
      if (byIp === undefined) {
        byIp = new Map();
        this.visitors.set(userAgent, byIp);
      }
      byIp.set(ip, id);
      this.visitorCount++;
    }
    return id;
  }

  private turn(day: string): void {
    if (day === this.day) return;
    this.day = day;
    this.seen.clear();
    this.visitors.clear();
    this.visitorCount = 0;
  }
}

/** The text a visitor id hashes: NUL cannot occur in a header value, so the parts cannot run together. */
export function visitorText(ip: string, userAgent: string, flavor: string): string {
  return `v\0${ip}\0${userAgent}\0${flavor}`;
}

/** The text a hashed IP hashes, apart from visitor ids even for the same inputs. */
export function ipText(ip: string): string {
  return `ip\0${ip}`;
}
