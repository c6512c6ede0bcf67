/**
 * Keyed hashes with the day's salt: the cookieless visitor id (client IP,
 * User-Agent and flavor, as Plausible derives its ids) and `privacy.ip:
 * "hashed"`. HMAC-SHA-256 truncated to 16 hex digits (64 bits): enough to tell
 * a day's visitors apart, and worthless once the salt is destroyed.
 *
 * A visitor sends many hits a day: the last ids are remembered per flavor day
 * (a bounded map, cleared whole when full or when the day turns), so a repeat
 * hit costs a map lookup instead of an HMAC.
 */
import { createHmac } from 'node:crypto';

const REMEMBERED = 4096;

export class DayHasher {
  private day = '';
  private readonly seen = new Map<string, string>();

  /** The 16-hex-digit keyed hash of `text` under `salt`, remembered for `day`. */
  hash(day: string, salt: Buffer, text: string): string {
    if (day !== this.day) {
      this.day = day;
      this.seen.clear();
    }
    let id = this.seen.get(text);
    if (id === undefined) {
      id = createHmac('sha256', salt).update(text).digest('hex').slice(0, 16);
      if (this.seen.size >= REMEMBERED) this.seen.clear();
      this.seen.set(text, id);
    }
    return id;
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
