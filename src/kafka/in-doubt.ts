/**
 * The Kafka backend's side of the Lines in doubt (doubt.ts): it notes the
 * last offset acknowledged per partition, writes the doubt file at a
 * shutdown that leaves Lines without a report, and at the next start reads
 * the topic back (readback.ts) before the drainer sends anything, then
 * tells the drainer which spooled records are already in the topic.
 */
import { rateLimited, type Logger } from '../log.js';
import { fingerprint, readDoubt, removeDoubt, Tally, writeDoubt, type Doubt, type Printable, type Unsure } from './doubt.js';
import { readBack, ReadBackError, READBACK_LIMITS, type ReadBackLimits } from './readback.js';

const RETRY_MAX_MS = 10_000;
/** Read-backs failed while the producer had a broker up, before the Lines are sent again. */
const GIVE_UP_AFTER = 5;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HALTED = Symbol('halted');

/** Why a spooled record is not sent (skips()): found by the read-back, not counted yet; or delivered, and counted, before the last stop. */
export const FOUND = 'found';
export const DELIVERED = 'delivered';
export type Skipped = typeof FOUND | typeof DELIVERED;

export class InDoubt {
  /** The doubt file as read at start, while its `unsure` is not read back yet. */
  private pending: Doubt | null = null;
  /** Found in the topic, still in the spool: the drainer skips one of each. */
  private skip = new Tally();
  /** Delivered and counted before the last stop, still in the spool (above its watermark): skipped, not counted. */
  private delivered = new Tally();
  /** Spooled records found in the topic and not sent again, this run. */
  found = 0;
  private readonly acked = new Map<string, Map<number, number>>();
  private readonly limited: ReturnType<typeof rateLimited>;
  private halt: () => void = () => {};
  private readonly halted = new Promise<void>((resolve) => (this.halt = resolve));

  constructor(
    private readonly dir: string | null,
    private readonly instance: string,
    private readonly settings: Record<string, string | number | boolean>,
    private readonly log: Logger,
    private readonly limits: ReadBackLimits = READBACK_LIMITS,
  ) {
    this.limited = rateLimited(log);
  }

  /** A delivery report said Kafka has this offset. */
  noteAcked(topic: string, partition: number, offset: number): void {
    let t = this.acked.get(topic);
    if (t === undefined) this.acked.set(topic, (t = new Map()));
    if (offset > (t.get(partition) ?? -1)) t.set(partition, offset);
  }

  /** At start, once the spool is open: what the last shutdown left in doubt. */
  async load(): Promise<void> {
    if (this.dir === null) return;
    const d = await readDoubt(this.dir);
    if (d === null) return;
    if (d.instance !== this.instance) {
      // Another instance's messages: this one cannot tell its own Lines apart there.
      this.log.warn({ was: d.instance, now: this.instance }, 'kafka: Lines in doubt from another instance name are sent again');
      await removeDoubt(this.dir);
      return;
    }
    this.pending = d.unsure === null ? null : d; // only an `unsure` part is read back
    this.skip = Tally.of(d.confirmed);
    this.delivered = Tally.of(d.delivered ?? {});
  }

  /**
   * Before the drainer sends anything: read the topics back for what the
   * last shutdown left in doubt, retrying while no broker answers, until
   * `stopped()`. Past the read-back's limits, they are sent again.
   */
  async confirm(stopped: () => boolean, brokerUp: () => boolean = () => false): Promise<void> {
    const d = this.pending;
    if (d === null || d.unsure === null || this.dir === null) return;
    const halted = this.halted.then((): typeof HALTED => HALTED);
    let backoff = this.limits.retryMinMs;
    let failedWhileUp = 0;
    while (!stopped()) {
      // A shutdown does not wait for a broker call (up to callTimeoutMs) or a
      // retry's pause: the attempt ends by itself (its consumer disconnects)
      // and the Lines stay in doubt for the next start.
      const attempt = readBack(this.settings, this.instance, d.unsure, this.limits, stopped);
      attempt.catch(() => {});
      try {
        const found = await Promise.race([attempt, halted]);
        if (found === HALTED) return;
        this.settle(found, d.unsure.prints.length);
        break;
      } catch (err) {
        if (stopped()) return;
        // Past its limits, or failing while the producer reaches a broker: it
        // must not hold the spool back for good.
        if (err instanceof ReadBackError || (brokerUp() && ++failedWhileUp >= GIVE_UP_AFTER)) {
          this.log.warn({ err: (err as Error).message, lines: d.unsure.prints.length },
            'kafka: Lines in doubt could not be read back; they are sent again (some may be in the topic twice)');
          this.settle(new Tally(), d.unsure.prints.length);
          break;
        }
        this.limited('readback', { err: (err as Error).message, retryInMs: backoff }, 'kafka: reading Lines in doubt back failed; retrying');
        if (await Promise.race([sleep(backoff), halted]) === HALTED) return;
        backoff = Math.min(backoff * 2, RETRY_MAX_MS);
      }
    }
    if (stopped()) return; // still in doubt: the shutdown's save() keeps it
    await this.persist(null);
  }

  /** Shutdown: a read-back under way, or waiting to retry, is given up at once. */
  stop(): void {
    this.halt();
  }

  private settle(found: Tally, inDoubt: number): void {
    for (const [print, n] of Object.entries(found.toJSON())) this.skip.add(print, n);
    this.pending = null;
    this.log.info({ inDoubt, found: found.size }, 'kafka: Lines in doubt read back; those found in the topic are not sent again');
  }

  private nothingToSkip(): boolean {
    return this.skip.size === 0 && this.delivered.size === 0;
  }

  /** Whether a spooled record about to be sent is one already in the topic, and why (then it is taken off its list); null to send it. */
  skips(topic: string, time: number, payload: Buffer): Skipped | null {
    if (this.nothingToSkip()) return null;
    const print = fingerprint(topic, time, payload);
    let why: Skipped;
    if (this.skip.take(print)) why = FOUND;
    else if (this.delivered.take(print)) why = DELIVERED;
    else return null;
    this.found++;
    if (this.nothingToSkip() && this.pending === null && this.dir !== null) void removeDoubt(this.dir);
    return why;
  }

  /**
   * The drainer has seen every record of the spool (it is empty, or handed
   * over its last ones): every record there at start was drained, so what
   * is left to skip matches none (its topic re-pointed by config, or the
   * record lost) and is forgotten with the doubt file.
   */
  spoolEmpty(): void {
    if (this.nothingToSkip() || this.pending !== null || this.dir === null) return;
    this.log.info({ lines: this.skip.size + this.delivered.size }, 'kafka: Lines in doubt found in the topic but no longer in the spool; forgotten');
    this.skip = new Tally();
    this.delivered = new Tally();
    void removeDoubt(this.dir);
  }

  /**
   * At shutdown, after the spool took every Line without a report
   * (`unreported`, those librdkafka still had): the doubt file for the next start (none when nothing is in doubt).
   * `delivered`: the fingerprints of spooled records Kafka acknowledged above
   * the watermark the spool keeps (delivered-ahead.ts), read again at the
   * next start and skipped then.
   */
  async save(unreported: readonly Printable[], delivered: readonly string[] = []): Promise<void> {
    if (this.dir === null) return;
    for (const print of delivered) this.delivered.add(print);
    let unsure: Unsure | null = null;
    if (unreported.length > 0) {
      const acked: Unsure['acked'] = {};
      let minTime = Infinity;
      const prints: string[] = [];
      for (const u of unreported) {
        acked[u.topic] ??= Object.fromEntries([...(this.acked.get(u.topic) ?? [])].map(([p, o]) => [String(p), o]));
        if (u.time < minTime) minTime = u.time;
        prints.push(fingerprint(u.topic, u.time, u.payload));
      }
      unsure = { minTime, acked, prints };
    }
    await this.persist(unsure);
  }

  /**
   * Writes what is in doubt now: a read-back not done yet is kept (its
   * bounds are the older, so the wider), with this run's Lines added.
   */
  private async persist(unsure: Unsure | null): Promise<void> {
    const dir = this.dir!;
    const old = this.pending?.unsure ?? null;
    const both = old === null ? unsure : unsure === null ? old : merge(old, unsure);
    if (both === null && this.nothingToSkip()) {
      await removeDoubt(dir);
      return;
    }
    await writeDoubt(dir, { version: 1, instance: this.instance, unsure: both, confirmed: this.skip.toJSON(), delivered: this.delivered.toJSON() });
  }
}

/**
 * Both runs' Lines in one read-back: a topic both wrote keeps, per
 * partition, the lower of the two bounds, and no bound where only one run
 * has one (the other run's Lines may lie before it).
 */
function merge(old: Unsure, now: Unsure): Unsure {
  const acked: Unsure['acked'] = { ...now.acked, ...old.acked };
  for (const topic of Object.keys(old.acked)) {
    const a = old.acked[topic]!, b = now.acked[topic];
    if (b === undefined) continue;
    acked[topic] = Object.fromEntries(Object.keys(a).filter((p) => p in b).map((p) => [p, Math.min(a[p]!, b[p]!)]));
  }
  return { minTime: Math.min(old.minTime, now.minTime), acked, prints: [...old.prints, ...now.prints] };
}
