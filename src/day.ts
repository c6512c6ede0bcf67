/**
 * Calendar days in a time zone, by Intl alone (no offset arithmetic of our
 * own). Formatting a date is a few microseconds, so `dayClock` remembers the
 * answer for the current minute: every zone in use today has offsets in whole
 * minutes, so a minute never straddles midnight.
 */

/** The day of `time` (ms since the epoch) in `timeZone`, as YYYY-MM-DD. */
export function dayOf(time: number, timeZone: string): string {
  return formatter(timeZone).format(time);
}

/** ISO 8601 local time with offset, e.g. 2024-03-31T03:00:00.000+03:00. */
export function isoTime(time: number, timeZone: string): string {
  const parts: Record<string, string> = {};
  for (const { type, value } of isoFormatter(timeZone).formatToParts(time)) parts[type] = value;
  const offset = parts.timeZoneName === 'GMT' ? '+00:00' : parts.timeZoneName!.slice(3);
  const ms = String(time % 1000 < 0 ? (time % 1000) + 1000 : time % 1000).padStart(3, '0');
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}.${ms}${offset}`;
}

/** Throws a RangeError for a zone Intl does not know. */
export function checkTimeZone(timeZone: string): void {
  formatter(timeZone);
}

/** `dayOf` for one zone, cached per minute. */
export function dayClock(timeZone: string): (time: number) => string {
  let minute = NaN;
  let day = '';
  return (time) => {
    const m = Math.floor(time / 60_000);
    if (m !== minute) {
      minute = m;
      day = dayOf(time, timeZone);
    }
    return day;
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const isoFormatters = new Map<string, Intl.DateTimeFormat>();

// en-CA formats a date as YYYY-MM-DD.
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f;
}

function isoFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = isoFormatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone, hourCycle: 'h23', timeZoneName: 'longOffset',
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    isoFormatters.set(timeZone, f);
  }
  return f;
}

// Calendar days as spans of time in a zone (the recovery commands, the loss
// windows): built on `dayOf` alone, no offset arithmetic of our own, so a day
// of 23 or 25 hours (a DST change) comes out right.

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Is `day` a real YYYY-MM-DD date? */
export function isDay(day: string): boolean {
  const m = DAY.exec(day);
  if (m === null) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === day;
}

/** The day after `day` (YYYY-MM-DD). */
export function nextDay(day: string): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/** The first millisecond (since the epoch) of `day` in `timeZone`. */
export function dayStart(day: string, timeZone: string): number {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  // Every zone's offset is within ±14 h, so the day starts in this span;
  // the smallest instant whose day is not before `day`.
  let lo = Date.UTC(y, m - 1, d) - 15 * 3_600_000;
  let hi = Date.UTC(y, m - 1, d) + 15 * 3_600_000;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (dayOf(mid, timeZone) < day) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** [first, last] millisecond of `day` in `timeZone`, inclusive. */
export function daySpan(day: string, timeZone: string): { first: number; last: number } {
  return { first: dayStart(day, timeZone), last: dayStart(nextDay(day), timeZone) - 1 };
}

/** Every day (YYYY-MM-DD, in `timeZone`) that [from, to] touches, in order. */
export function daysBetween(from: number, to: number, timeZone: string): string[] {
  const days: string[] = [];
  const last = dayOf(to, timeZone);
  for (let day = dayOf(from, timeZone); day <= last; day = nextDay(day)) days.push(day);
  return days;
}

/** The latest instant a JavaScript Date holds (ms since the epoch): 275760-09-13. */
const MAX_TIME = 8.64e15;

/**
 * A time given on the command line: ISO 8601 with a zone (Z or ±hh:mm; a
 * time without one would silently mean the machine's zone), or ms since the
 * epoch. NaN when it is neither, when a field is out of range (Date.parse
 * rolls 2026-02-30 over to March 2 and 24:00 to the next day), or when it is
 * beyond what a Date holds.
 */
export function parseTime(text: string): number {
  if (/^\d+$/.test(text)) {
    const ms = Number(text);
    return ms <= MAX_TIME ? ms : NaN;
  }
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-](\d{2}):?(\d{2}))$/.exec(text);
  if (m === null || !isDay(m[1]!)) return NaN;
  const [hh, mm, ss, zh, zm] = [m[2], m[3], m[4] ?? '0', m[6] ?? '0', m[7] ?? '0'].map(Number) as [number, number, number, number, number];
  if (hh > 23 || mm > 59 || ss > 59 || zh > 23 || zm > 59) return NaN;
  return Date.parse(text);
}
