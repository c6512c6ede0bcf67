/**
 * How fast the spool's drainer may go: a small feedback controller, pure (no
 * clock, no I/O), so its rules can be tested with made-up utilizations.
 *
 * The drainer shares the event loop with the request path, and its real cost
 * is more than the slice it can time: delivery reports (one JS callback per
 * message), spool reads and checksums all run on the same thread at other
 * moments. So instead of guessing that cost, the controller looks at what the
 * whole loop does (`performance.eventLoopUtilization()`, which counts uWS's
 * request handling too: uWS runs its sockets on Node's libuv loop) and aims
 * it at a ceiling, giving the drainer only what the request path leaves.
 * The loop is not all of the process: librdkafka's threads (compression,
 * sockets) and libuv's pool (spool writes and reads) work hardest during a
 * drain, and where the process has one core (taskset, a small VM) they take
 * it from the loop unseen by its utilization; so the figure used is the
 * larger of the loop's utilization and the process's CPU time over the
 * cores it may run on (`busyness`).
 *   - `duty` is the share of wall time the drainer's own slices may take;
 *     after a slice of `sliceMs` it rests sliceMs × (1 − duty) / duty;
 *   - every `periodMs` or more, duty moves by half the gap between the ceiling
 *     and the busyness measured since the last decision: down when the
 *     loop is busier than the ceiling, up when it idles (an idle server drains
 *     at up to `maxDuty`). Half the gap, over periods longer than a delivery
 *     report's lag, so that costs the slice does not see (which make a duty
 *     step move the loop by more than the step) cannot make it oscillate;
 *   - duty never goes below `minDuty`: under sustained maximum load the loop
 *     is always over the ceiling, and the drainer would otherwise stop, the
 *     spool's oldest records would never reach Kafka and it would grow to its
 *     bounds. The floor costs the request path at most that share of the
 *     thread (plus the reports of what it produces), only while the loop is
 *     saturated, and lets a backlog built in a burst keep moving.
 */
export interface PaceConfig {
  /** The loop utilization (0..1) the controller aims the whole thread at. */
  ceiling: number;
  /** The drainer's share never goes below this, however busy the loop. */
  minDuty: number;
  /** Nor above this, however idle the loop: requests always find it free soon. */
  maxDuty: number;
  /** Decide at most this often: utilization over shorter windows is noise. */
  periodMs: number;
  /** Longest rest after a slice. */
  maxRestMs: number;
}

export const PACE_DEFAULTS: Readonly<PaceConfig> = {
  ceiling: 0.8,
  minDuty: 0.05,
  maxDuty: 0.9,
  periodMs: 50,
  maxRestMs: 200,
};

/**
 * How busy the process was over a window, 0..1: the larger of the event
 * loop's utilization and its CPU time (all threads) per wall time per core
 * it may run on.
 */
export function busyness(loopUtilization: number, cpuMs: number, wallMs: number, cores: number): number {
  const cpuShare = wallMs > 0 && cores > 0 ? cpuMs / (wallMs * cores) : 0;
  return Math.min(1, Math.max(loopUtilization, cpuShare));
}

/** The next duty, given how busy the process was (0..1, `busyness`) since the last decision. */
export function nextDuty(duty: number, utilization: number, config: PaceConfig = PACE_DEFAULTS): number {
  const next = duty + (config.ceiling - utilization) / 2;
  return Math.min(config.maxDuty, Math.max(config.minDuty, next));
}

/** How long to rest after a slice that took `sliceMs`, so slices take `duty` of the time. */
export function restAfter(sliceMs: number, duty: number, config: PaceConfig = PACE_DEFAULTS): number {
  return Math.min(config.maxRestMs, Math.max(0, sliceMs) * (1 - duty) / duty);
}

/**
 * The controller's state between decisions. `step` is called after each
 * slice with the time now, the loop's utilization since the last decision
 * (or null when the caller has none yet) and the slice's duration; it
 * returns how long to rest.
 */
export class DrainPace {
  duty: number;
  private decidedAt: number | null = null;

  constructor(private readonly config: PaceConfig = PACE_DEFAULTS, initialDuty = 0.5) {
    this.duty = Math.min(config.maxDuty, Math.max(config.minDuty, initialDuty));
  }

  /** Whether a decision is due at `now` (the caller then measures utilization since the last one). */
  due(now: number): boolean {
    return this.decidedAt === null || now - this.decidedAt >= this.config.periodMs;
  }

  step(now: number, utilization: number | null, sliceMs: number): number {
    if (this.due(now)) {
      if (utilization !== null && this.decidedAt !== null) this.duty = nextDuty(this.duty, utilization, this.config);
      this.decidedAt = now;
    }
    return restAfter(sliceMs, this.duty, this.config);
  }
}
