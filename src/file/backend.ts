import { ignoreLoss, newCounters, type Backend, type BackendHealth, type LossListener, type LossReason } from '../backend.js';
import { Channel } from '../channel.js';
import type { FileConfig } from '../config.js';
import type { Flavor } from '../flavor.js';
import type { Line } from '../line.js';
import { rateLimited, type Logger } from '../log.js';
import { DayKeeper } from './keeper.js';
import { addDays, dayPaths } from './paths.js';
import type { FileStats, FileStatsSource } from './stats.js';
import { DayWriter, type WriterHost } from './writer.js';
import { FlavorState } from './flavor-state.js';

export { dayFile } from './paths.js';

/**
 * Per-flavor daily log files. One loop takes batches from the channel and
 * routes each Line to the writer of its (flavor, day) file; each writer
 * writes, fails, backs off and retries on its own (writer.ts), so one broken
 * flavor never holds up another.
 *
 * When a Line reaches write(2): the channel wakes the loop in the turn its
 * request was answered in (setImmediate: the check phase, right after the
 * I/O callbacks that answered), and each writer writes what it holds at
 * once, with one write(2) (writer.ts kick()); only while a file is being
 * opened or its writes fail do its new Lines wait, for that. No Lines are
 * gathered over time: a process crash (SIGKILL, the OOM killer) loses only
 * what was answered in the turn it died in.
 *
 * The queue: `queueCapacity` Lines and `queueBytes` bytes in all, the
 * channel plus what writers hold. A flavor with a failing write may hold at
 * most its share, `queueCapacity / flavors` Lines and `queueBytes / flavors`
 * bytes; its further Lines are dropped as they are routed, counted for that
 * flavor. Healthy flavors are not limited by shares, only by the whole: a
 * Line that would take the total over either bound is dropped at `send`.
 *
 * Past days: a day's writer idle for `idleCloseMs`, once the flavor's
 * midnight is `idleCloseMs` behind, is closed and the day sealed, then
 * compressed and, past `retainDays`, pruned (keeper.ts); the same pass does
 * this for files left by an earlier run. Every past day is sealed at
 * shutdown.
 */
export class FileBackend implements Backend, FileStatsSource, WriterHost {
  readonly name = 'file';
  readonly counters = newCounters();
  onLoss: LossListener = ignoreLoss;
  readonly retryMs: number;
  private readonly channel: Channel<Line>;
  private readonly writers = new Map<string, DayWriter>();
  /** Each flavor's most recently used writer, by name: saves building a key per Line. */
  private readonly current = new Map<string, DayWriter>();
  /** By flavor name, not object: a reload that changes a flavor keeps its one state (writers, share, counts). */
  private readonly states = new Map<string, FlavorState>();
  private readonly failing = new Map<DayWriter, string>();
  private readonly dirty: DayWriter[] = [];
  /** Lines held by writers (pending or in flight), and their bytes. */
  private held = 0;
  private heldBytes = 0;
  private readonly share: number;
  private readonly shareBytes: number;
  private closing = false;
  private readonly logError: ReturnType<typeof rateLimited>;
  private loop: Promise<void> = Promise.resolve();
  private sweeper: NodeJS.Timeout | undefined;
  private passing: Promise<void> | null = null;
  private readonly keeper: DayKeeper;
  private late = 0;

  constructor(private readonly config: FileConfig, private readonly log: Logger, flavors: readonly Flavor[] = []) {
    // Bytes as written: the Line and its newline.
    this.channel = new Channel<Line>(config.queueCapacity, config.queueBytes, (line) => line.json.length + 1);
    this.retryMs = config.retryMs;
    this.logError = rateLimited(log);
    for (const f of flavors) this.states.set(f.name, new FlavorState(f));
    this.share = Math.max(1, Math.floor(config.queueCapacity / Math.max(1, flavors.length)));
    this.shareBytes = Math.floor(config.queueBytes / Math.max(1, flavors.length));
    this.keeper = new DayKeeper(config, log, this.logError);
  }

  async start(): Promise<void> {
    this.loop = this.run();
    // The first pass seals what an earlier run left unsealed (after a crash).
    this.tick();
    this.sweeper = setInterval(() => this.tick(), Math.min(this.config.idleCloseMs, 60_000)).unref();
  }

  send(line: Line): boolean {
    if (this.held + this.channel.length < this.channel.capacity &&
      this.heldBytes + this.channel.bytes + line.json.length + 1 <= this.config.queueBytes && this.channel.send(line)) return true;
    this.drop(line, this.stateOf(line.flavor));
    return false;
  }

  queued(): number {
    return this.channel.length + this.held;
  }

  health(): BackendHealth {
    for (const reason of this.failing.values()) return { state: 'degraded', reason };
    return { state: 'ok' };
  }

  reopen(): void {
    for (const w of this.writers.values()) w.reopen = true;
    this.log.info('reopening files');
  }

  async close(): Promise<void> {
    this.closing = true;
    this.channel.close();
    clearInterval(this.sweeper);
    const compressing = this.keeper.stop();
    await this.loop;
    await Promise.all([...this.writers.values()].map((w) => w.idle()));
    await this.passing;
    await compressing;
    // Every past day is sealed at shutdown: the ones written in this run, and
    // any other file of a past day still without a manifest.
    const unsynced: string[] = [];
    for (const w of [...this.writers.values()]) {
      this.writers.delete(w.key);
      const err = await w.close();
      if (err !== null) {
        this.syncFailed(w, err);
        unsynced.push(`${err.code ?? 'error'} ${w.paths.log}`);
      }
      if (w.day < w.flavor.day(Date.now())) await this.keeper.seal(w.flavor, w.day, w.lastTime);
    }
    for (const s of this.states.values()) await this.keeper.scan(s.flavor, () => new Set(), true);
    if (unsynced.length > 0) throw new Error(`fsync failed at shutdown, written Lines may not be on disk: ${unsynced.join(', ')}`);
  }

  /** A day file's fsync failed: the Lines written to it since its last fsync may be lost. */
  private syncFailed(w: DayWriter, e: NodeJS.ErrnoException): void {
    this.counters.failed++;
    this.log.error({ file: w.paths.log, flavor: w.flavor.name, err: e.message }, 'fsync failed; written Lines may not be on disk');
  }

  /** The drain timed out: what is still queued or held by writers is lost; count it and tell the loss listener. */
  abandon(): void {
    for (const line of this.channel.drainAll()) {
      this.drop(line, this.stateOf(line.flavor), 'drain_timeout');
    }
    for (const w of this.writers.values()) {
      const s = w.state;
      w.abandon((time, count) => {
        this.counters.dropped += count;
        s.dropped += count;
        this.onLoss(this.name, s.flavor.name, time, 'drain_timeout', count);
      });
    }
  }

  fileStats(): FileStats {
    const flavors: FileStats['flavors'] = {};
    for (const s of this.states.values()) {
      flavors[s.flavor.name] = { queued: s.held, dropped: s.dropped, late: s.late, failing: s.failingWriters > 0 ? 1 : 0 };
    }
    return {
      sealed_days: this.keeper.totals.sealed,
      compressed_days: this.keeper.totals.compressed,
      pruned_days: this.keeper.totals.pruned,
      late_lines: this.late,
      torn_lines: this.keeper.totals.torn,
      flavors,
      unsealed_past_days: this.unsealedPastDays(),
    };
  }

  /** As of the last pass, plus past days whose writer is still open (waiting for its idle time). */
  private unsealedPastDays(): Record<string, string[]> {
    const out: Record<string, Set<string>> = {};
    for (const [flavor, days] of this.keeper.unsealed) out[flavor] = new Set(days);
    const now = Date.now();
    for (const w of this.writers.values()) {
      if (w.day < w.flavor.day(now)) (out[w.flavor.name] ??= new Set()).add(w.day);
    }
    return Object.fromEntries(Object.entries(out).map(([f, days]) => [f, [...days].sort()]));
  }

  private async run(): Promise<void> {
    for (;;) {
      const batch = await this.channel.receive();
      if (batch.length === 0) return;
      for (let i = 0; i < batch.length; i++) this.route(batch[i]!);
      for (let i = 0; i < this.dirty.length; i++) this.dirty[i]!.kick();
      this.dirty.length = 0;
    }
  }

  private route(line: Line): void {
    const day = line.flavor.day(line.time);
    let w = this.current.get(line.flavor.name);
    if (w === undefined || w.day !== day) w = this.writerFor(line.flavor, day);
    const s = w.state;
    if (s.failingWriters !== 0 && (s.held >= this.share || s.heldBytes + line.json.length + 1 > this.shareBytes)) {
      this.drop(line, s);
      return;
    }
    w.push(line);
    this.held++;
    this.heldBytes += line.json.length + 1;
    if (w.pending.length === 1) this.dirty.push(w);
  }

  private drop(line: Line, s: FlavorState, reason: LossReason = 'queue_full'): void {
    this.counters.dropped++;
    s.dropped++;
    this.onLoss(this.name, line.flavor.name, line.time, reason);
  }

  private stateOf(flavor: Flavor): FlavorState {
    let s = this.states.get(flavor.name);
    if (s === undefined) this.states.set(flavor.name, (s = new FlavorState(flavor)));
    else if (s.flavor !== flavor) s.flavor = flavor;
    return s;
  }

  /**
   * The writer for a Line of `flavor` on `day`. A sealed day gets no more
   * Lines (e.g. after the clock was stepped back): they go to the first day
   * from today on that is not sealed, counted as late.
   */
  private writerFor(flavor: Flavor, day: string): DayWriter {
    const key = `${flavor.name}/${day}`;
    let w = this.writers.get(key);
    if (w === undefined) {
      if (this.keeper.isSealed(flavor, day)) {
        const s = this.stateOf(flavor);
        s.late++;
        this.late++;
        let to = flavor.day(Date.now());
        while (this.keeper.isSealed(flavor, to)) to = addDays(to, 1);
        return this.writerFor(flavor, to);
      }
      w = new DayWriter(key, this.stateOf(flavor), day, dayPaths(this.config.dir, flavor.name, day, this.keeper.names), this);
      this.writers.set(key, w);
    }
    this.current.set(flavor.name, w);
    return w;
  }

  // WriterHost: what writers report.
  written(_w: DayWriter, lines: number, bytes: number): void {
    this.counters.persisted += lines;
    this.held -= lines;
    this.heldBytes -= bytes;
  }

  failed(w: DayWriter, e: NodeJS.ErrnoException): void {
    this.counters.failed++;
    this.failing.set(w, `${e.code ?? 'error'} ${w.paths.log}`);
    this.logError(e.code ?? 'write', { file: w.paths.log, flavor: w.flavor.name, err: e.message }, 'write failed; retrying');
  }

  retrying(): void {
    this.counters.retried++;
  }

  recovered(w: DayWriter): void {
    this.failing.delete(w);
    this.log.info({ file: w.paths.log, flavor: w.flavor.name }, 'writing again');
  }

  indexFailed(w: DayWriter, e: NodeJS.ErrnoException): void {
    this.logError(`index ${e.code ?? 'error'}`, { file: w.paths.idx, err: e.message }, 'index write failed');
  }

  torn(w: DayWriter, bytes: number): void {
    this.keeper.torn(w.paths.log, bytes, w.paths.torn);
  }

  /** The sweeper: one pass at a time. */
  private tick(): void {
    if (this.passing !== null || this.closing) return;
    this.passing = this.pass()
      .catch((err: Error) => this.logError('pass', { err: err.message }, 'day files pass failed'))
      .finally(() => {
        this.passing = null;
      });
  }

  private async pass(): Promise<void> {
    const now = Date.now();
    for (const w of [...this.writers.values()]) {
      if (this.closing) return;
      if (w.busy || w.pending.length > 0) continue;
      if (w.day < w.flavor.day(now - this.config.idleCloseMs) && now - w.lastWrite >= this.config.idleCloseMs) {
        // From here on Lines of this day are late: the writer is gone and the day marked.
        this.keeper.markSealed(w.flavor, w.day);
        this.writers.delete(w.key);
        if (this.current.get(w.flavor.name) === w) this.current.delete(w.flavor.name);
        this.log.debug({ file: w.paths.log }, 'closing idle file');
        const err = await w.close();
        // Sealing fsyncs again, and fails (to be retried by a later pass) if the file is still bad.
        if (err !== null) this.syncFailed(w, err);
        await this.keeper.seal(w.flavor, w.day, w.lastTime);
      }
    }
    for (const s of this.states.values()) {
      if (this.closing) return;
      await this.keeper.scan(s.flavor, () => this.openDays(s), false);
    }
  }

  /** The days of a flavor with a writer now. */
  private openDays(s: FlavorState): Set<string> {
    const open = new Set<string>();
    for (const w of this.writers.values()) if (w.state === s) open.add(w.day);
    return open;
  }
}
