/**
 * When a topic reported unknown by a broker that answers is gone for good.
 *
 * librdkafka gives a new topic topic.metadata.propagation.max.ms to appear,
 * counted in elapsed time from its first message, and fails the topic's
 * messages at the first "unknown topic" answer after that. A broker that
 * auto-creates a topic answers "unknown topic" while it creates it (KRaft),
 * so after an outage or a pause longer than that window (the broker died
 * or stopped before the topic was made) the first answer fails Lines of a
 * topic that is just being created. So that verdict is not final: a topic
 * is taken as gone only once brokers kept calling it unknown for a window
 * of its own, counted from its first such failure with no outage since.
 * A deleted topic (auto-creation off) is still given up on then, and its
 * Lines no longer hold up the spool's drain. librdkafka's own verdict is
 * cached: while a paused broker says nothing, produce() still refuses the
 * topic at once, so the window is final only once librdkafka's statistics
 * found brokers answering after its end (a silence is an outage).
 */
import { RDKAFKA_DEFAULTS } from './settings.js';

/**
 * The least such window: librdkafka asks again for an unknown topic once a
 * second, so a shorter one might end before it has heard of the new topic.
 */
const MIN_WINDOW_MS = 5000;
/** librdkafka's default topic.metadata.propagation.max.ms. */
const PROPAGATION_DEFAULT_MS = 30_000;

export class UnknownTopics {
  private readonly windowMs: number;
  /** Statistics come (statistics.interval.ms above 0): only they tell that brokers answer. */
  private readonly watched: boolean;
  /** Topic → when a broker that answers first called it unknown, since the last outage. */
  private readonly since = new Map<string, number>();
  /** When statistics last found brokers answering. */
  private heardAt = -Infinity;

  constructor(rdkafka: Readonly<Record<string, unknown>>) {
    const propagation = Number(rdkafka['topic.metadata.propagation.max.ms'] ?? PROPAGATION_DEFAULT_MS);
    this.windowMs = Math.max(MIN_WINDOW_MS, Number.isFinite(propagation) ? propagation : PROPAGATION_DEFAULT_MS);
    this.watched = Number(rdkafka['statistics.interval.ms'] ?? RDKAFKA_DEFAULTS['statistics.interval.ms']) > 0;
  }

  /**
   * A broker that answers calls `topic` unknown: true while the topic may
   * still be being created. `now` is monotonic (performance.now()), as
   * librdkafka's own window is: a wall-clock step neither ends nor stretches it.
   */
  mayAppear(topic: string | undefined, now: number): boolean {
    if (topic === undefined) return false;
    const first = this.since.get(topic);
    if (first === undefined) {
      this.since.set(topic, now);
      return true;
    }
    return now - first < this.windowMs || (this.watched && this.heardAt < first + this.windowMs);
  }

  /** librdkafka's statistics found brokers answering (`now` as for mayAppear). */
  heard(now: number): void {
    this.heardAt = now;
  }

  /** A message reached `topic`: it exists. */
  exists(topic: string): void {
    if (this.since.size > 0) this.since.delete(topic);
  }

  /** No broker answered for a while: what they said before tells nothing of what they will say. */
  outage(): void {
    this.since.clear();
  }
}
