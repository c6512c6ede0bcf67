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
