/**
 * Loss windows: every Line a backend gives up on opens or extends the window
 * of its (backend, flavor): the first and last arrival time lost, how many,
 * and why. A window closes once no Line of it was lost for `quietMs`; a closed
 * window is logged once, with the command that recovers it, and appended to
 * `<stateDir>/losses.jsonl`, which `scratchd replay --window ID` reads.
 *
 * The listener runs on the request path (a full queue drops at `send`): it
 * only updates numbers in a map; closing and writing happen on a timer.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LossListener, LossReason } from './backend.js';
import type { Flavor } from './flavor.js';
import type { Logger } from './log.js';
import { daysBetween } from './day.js';

export const LOSSES_FILE = 'losses.jsonl';
/** A window closes after this long without a drop. */
export const QUIET_MS = 10_000;
/** Closed windows kept for /stats. */
const RECENT = 20;

/** A window as /stats shows it and losses.jsonl records it. */
export interface LossWindow {
  id: string;
  /** The instance that lost the Lines (config `instance`): windows of several instances are told apart. */
  instance?: string;
  backend: string;
  flavor: string;
  /**
   * First and last arrival time of a lost Line, ISO 8601 UTC; for a backend
   * the files recover (Kafka), `to` is the last drop if that came later.
   */
  from: string;
  to: string;
  count: number;
  reasons: Partial<Record<LossReason, number>>;
  /** When the window closed (absent while open), ISO 8601 UTC. */
  closedAt?: string;
  /** What recovers the Lines: replay from the files for Kafka, rebuild from Kafka for files; none for the relay (refused with 503, no backend has them). */
  command?: string;
}

interface Open {
  backend: string;
  flavor: string;
  first: number;
  last: number;
  count: number;
  reasons: Partial<Record<LossReason, number>>;
  /** Wall-clock time of the last drop: the window closes QUIET_MS after it. */
  lastDropAt: number;
}

export interface LossTrackerOptions {
  stateDir: string;
  /** The config file the daemon runs with, for the recovery command. */
  configFile: string;
  /** This instance's name (config `instance`); absent: windows name none. */
  instance?: string;
  /** flavor name → time zone (days of a rebuild command); a reload replaces it with `useFlavors`. */
  timeZones: ReadonlyMap<string, string>;
  log: Logger;
  quietMs?: number;
  now?: () => number;
}

export class LossTracker {
  private readonly open = new Map<string, Open>();
  private readonly recent: LossWindow[] = [];
  /** Windows opened since start, by `${backend}\0${flavor}`. */
  private readonly opened = new Map<string, number>();
  private readonly ids = new Set<string>();
  private readonly quietMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private timeZones: ReadonlyMap<string, string>;

  constructor(private readonly opts: LossTrackerOptions) {
    this.quietMs = opts.quietMs ?? QUIET_MS;
    this.now = opts.now ?? Date.now;
    this.timeZones = opts.timeZones;
  }

  /**
   * The flavor table after a reload: a window closed from now on names the
   * days of its flavor's current time zone (a window still open was opened
   * under the old one, but its Lines go to the days the file backend now
   * uses).
   */
  useFlavors(flavors: readonly Flavor[]): void {
    this.timeZones = new Map(flavors.map((f) => [f.name, f.timeZone]));
  }

  /** Install as every backend's `onLoss`. */
  readonly listener: LossListener = (backend, flavor, time, reason, count = 1) => {
    const key = `${backend}\0${flavor}`;
    let w = this.open.get(key);
    if (w === undefined) {
      w = { backend, flavor, first: time, last: time, count: 0, reasons: {}, lastDropAt: 0 };
      this.open.set(key, w);
      this.opened.set(key, (this.opened.get(key) ?? 0) + 1);
    }
    if (time < w.first) w.first = time;
    if (time > w.last) w.last = time;
    w.count += count;
    w.reasons[reason] = (w.reasons[reason] ?? 0) + count;
    w.lastDropAt = this.now();
  };

  /** Check for quiet windows once a second. */
  start(): void {
    this.timer = setInterval(() => this.closeQuiet(), 1000);
    this.timer.unref();
  }

  /** Close the windows quiet for long enough; returns them. */
  closeQuiet(): LossWindow[] {
    const now = this.now();
    const closed: LossWindow[] = [];
    for (const [key, w] of this.open) {
      if (now - w.lastDropAt >= this.quietMs) {
        this.open.delete(key);
        closed.push(this.close(w, now));
      }
    }
    return closed;
  }

  /** Shutdown: close every window still open, whatever its age. */
  closeAll(): LossWindow[] {
    if (this.timer !== null) clearInterval(this.timer);
    const now = this.now();
    const closed = [...this.open.values()].map((w) => this.close(w, now));
    this.open.clear();
    return closed;
  }

  /** Windows opened since start, per (backend, flavor). */
  windowsTotal(): { backend: string; flavor: string; count: number }[] {
    return [...this.opened].map(([key, count]) => {
      const [backend, flavor] = key.split('\0') as [string, string];
      return { backend, flavor, count };
    });
  }

  /** For /stats: the open windows and the last closed ones, newest last. */
  snapshot(): { open: LossWindow[]; recent: LossWindow[] } {
    return { open: [...this.open.values()].map((w) => this.describe(w)), recent: [...this.recent] };
  }

  private describe(w: Open): LossWindow {
    const id = `${w.backend}-${w.flavor}-${new Date(w.first).toISOString().replace(/[-:]/g, '')}`;
    // A replay finds a Line in the day files by when it was written, which for
    // a POST is when its body came, after its arrival: a window the files
    // recover runs on to the last drop, which came after every lost Line was
    // written. A rebuild filters by arrival time alone.
    const to = w.backend === 'file' ? w.last : Math.max(w.last, w.lastDropAt);
    return {
      id, ...(this.opts.instance === undefined ? {} : { instance: this.opts.instance }), backend: w.backend, flavor: w.flavor,
      from: new Date(w.first).toISOString(), to: new Date(to).toISOString(),
      count: w.count, reasons: { ...w.reasons },
    };
  }

  private close(w: Open, now: number): LossWindow {
    const window = this.describe(w);
    // Two windows of one (backend, flavor) may start in the same millisecond.
    for (let n = 2; this.ids.has(window.id); n++) window.id = `${this.describe(w).id}-${n}`;
    this.ids.add(window.id);
    window.closedAt = new Date(now).toISOString();
    const command = this.recoveryCommand(window);
    if (command !== null) window.command = command;
    this.recent.push(window);
    if (this.recent.length > RECENT) this.recent.shift();
    this.opts.log.warn({ lossWindow: window },
      `loss window closed: ${window.backend} lost ${window.count} Lines of ${window.flavor} that arrived ` +
      `${window.from} to ${window.to}; ${command === null ? 'refused before they were answered (503): no backend has them, nothing to recover' : `recover with: ${command}`}`);
    try {
      appendLine(this.opts.stateDir, JSON.stringify(window) + '\n');
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message, stateDir: this.opts.stateDir },
        'cannot record the loss window in stateDir; it is only in this log line');
    }
    return window;
  }

  /**
   * Kafka lost Lines the files have: replay them. The files lost Lines Kafka
   * has: rebuild those days from the topic (beside the live files, to
   * compare and put in place by hand).
   */
  private recoveryCommand(w: LossWindow): string | null {
    // Refused by a serving thread (a full relay): answered 503, in no file and no topic.
    if (w.backend === 'relay') return null;
    const config = shellQuote(resolve(this.opts.configFile));
    // Explicit times rather than --window: the command works even where losses.jsonl is not.
    if (w.backend !== 'file') return `scratchd replay --config ${config} --flavor ${w.flavor} --from ${w.from} --to ${w.to}`;
    const zone = this.timeZones.get(w.flavor) ?? 'UTC';
    const out = shellQuote(join(resolve(this.opts.stateDir), 'rebuilt'));
    return daysBetween(Date.parse(w.from), Date.parse(w.to), zone)
      .map((day) => `scratchd rebuild --config ${config} --flavor ${w.flavor} --day ${day} --out ${out}`)
      .join(' && ');
  }
}

/**
 * Append one line to losses.jsonl, starting on a line boundary: after a
 * partial last line (an append cut short by a full disk or a crash) a newline
 * comes first, so the new window is not glued onto the fragment and lost to
 * the reader, which skips the fragment (or reads it, when only its newline
 * was missing). An append cut short now is taken back. Small and rare (one
 * line per closed window), and synchronous and fsynced so the windows closed
 * at shutdown are on disk before the process exits.
 */
function appendLine(stateDir: string, line: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o750 });
  const fd = openSync(join(stateDir, LOSSES_FILE), 'a+', 0o640);
  try {
    const size = fstatSync(fd).size;
    const last = Buffer.alloc(1);
    const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 10;
    const data = Buffer.from(torn ? `\n${line}` : line);
    try {
      // O_APPEND: each write goes to the end of the file.
      for (let n = 0; n < data.length;) n += writeSync(fd, data, n);
      fsyncSync(fd);
    } catch (err) {
      try { ftruncateSync(fd, size); } catch { /* the next append starts with a newline */ }
      throw err;
    }
  } finally {
    closeSync(fd);
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The windows recorded in `<stateDir>/losses.jsonl` (unreadable lines skipped). */
export function readLossWindows(stateDir: string): LossWindow[] {
  let text: string;
  try {
    text = readFileSync(join(stateDir, LOSSES_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: LossWindow[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      out.push(JSON.parse(line) as LossWindow);
    } catch { /* a line cut short by a crash */ }
  }
  return out;
}
