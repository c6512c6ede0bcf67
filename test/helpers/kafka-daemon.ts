/**
 * The built daemon with the Kafka backend on, each daemon with topics of its
 * own (unique per run, so a shared KAFKA_BOOTSTRAP broker never mixes runs).
 */
import http from 'node:http';
import { join } from 'node:path';
import { dayOf } from '../../src/day.js';
import type { Test } from 'tap';
import { consume, type Consumed } from './consume.js';
import { startDaemon, testFlavors, type Daemon, type DaemonOptions } from './daemon.js';
import { dayLines } from './files.js';
import { startKafka, waitForMetadata } from './kafka.js';
import { request } from './http.js';
import { runId } from './lines.js';
import { sleep, until } from './wait.js';

let daemons = 0;

export interface KafkaDaemon extends Daemon {
  /** Flavor name → its topic. */
  readonly topics: Record<string, string>;
  /** The flavor's Lines in today's file. */
  fileLines(flavor: string): string[];
}

export async function startKafkaDaemon(bootstrap: string, opts: DaemonOptions & {
  kafka?: Record<string, unknown>;
  file?: Record<string, unknown>;
  enrich?: Record<string, string>;
  /** Merged into every flavor (privacy, bots, …). */
  flavor?: Record<string, unknown>;
  /** Flavor name → topic, to reuse another daemon's topics (a restart); new ones by default. */
  topics?: Record<string, string>;
} = {}): Promise<KafkaDaemon> {
  const n = ++daemons;
  const flavors = testFlavors.map((f) => ({
    ...f,
    topic: opts.topics?.[f.name] ?? `e2e.${f.name}.${runId}.${n}`,
    ...(opts.enrich !== undefined ? { enrich: opts.enrich } : {}),
    ...opts.flavor,
  }));
  const kafka = (opts.kafka ?? {}) as { rdkafka?: Record<string, unknown> };
  const d = await startDaemon({
    ...opts,
    config: {
      ...opts.config,
      flavors,
      backends: {
        ...(opts.file !== undefined ? { file: opts.file } : {}),
        kafka: { enabled: true, ...kafka, rdkafka: { 'metadata.broker.list': bootstrap, ...kafka.rdkafka } },
      },
    },
  });
  return Object.assign(d, {
    topics: Object.fromEntries(flavors.map((f) => [f.name, f.topic])),
    fileLines: (flavor: string) => {
      const tz = testFlavors.find((f) => f.name === flavor)!.timeZone;
      return dayLines(join(d.dir, 'log'), flavor, dayOf(Date.now(), tz));
    },
  });
}

export async function health(d: Daemon): Promise<{ status: number; body: { backends: Record<string, { state: string; reason?: string }> } }> {
  const r = await request(d.statsPort, '/health');
  return { status: r.status, body: JSON.parse(r.body.toString()) };
}

/**
 * Steady traffic: `concurrency` keep-alive clients, each sending
 * `/track?id=N` with a pause of `gapMs`, until stopped. Records the ids
 * answered 200, the slowest answer, and every non-200.
 */
export function traffic(d: Daemon, host: string, concurrency = 4, gapMs = 10) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const ok: string[] = [];
  /** When each of `ok` was answered (Date.now()). */
  const okAt: number[] = [];
  const bad: string[] = [];
  let next = 0;
  let slowest = 0;
  let stopped = false;
  const client = async (): Promise<void> => {
    while (!stopped) {
      const id = String(next++);
      const began = performance.now();
      try {
        const r = await request(d.port, `/track?id=${id}`, { host, agent });
        if (r.status === 200) {
          ok.push(id);
          okAt.push(Date.now());
        }
        else bad.push(`${id}: ${r.status}`);
      } catch (err) {
        bad.push(`${id}: ${(err as Error).message}`);
      }
      slowest = Math.max(slowest, performance.now() - began);
      await sleep(gapMs);
    }
  };
  const clients = Array.from({ length: concurrency }, client);
  return {
    get slowestMs() { return slowest; },
    get answered() { return ok.length; },
    /** The ids answered 200 so far. */
    get ok(): readonly string[] { return ok; },
    async stop(): Promise<{ ok: string[]; okAt: number[]; bad: string[]; slowestMs: number }> {
      stopped = true;
      await Promise.all(clients);
      agent.destroy();
      return { ok, okAt, bad, slowestMs: slowest };
    },
  };
}

/** ids of messages (their `id` Value), with how often each came. */
export function idCounts(values: Buffer[] | string[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const v of values) {
    const id = (JSON.parse(v.toString()) as { id: string }).id;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

/** The daemon's /stats object. */
export async function stats(d: Daemon): Promise<Record<string, any>> {
  const r = await request(d.statsPort, '/stats');
  return JSON.parse(r.body.toString()) as Record<string, any>;
}

/** `until` with the Kafka tests' longer default deadline. */
export const waitFor = (what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> =>
  until(what, cond, timeoutMs);

/** The spool opened, and holds nothing. */
export async function spoolHoldsNothing(d: KafkaDaemon): Promise<boolean> {
  const s = (await stats(d)).kafka_spool;
  return s?.ready === 1 && s.records === 0;
}

/** New topic names, unique per run: `<prefix>.<runId>.<n>`. */
export function topicNamer(prefix: string): () => string {
  let n = 0;
  return () => `${prefix}.${runId}.${++n}`;
}

/**
 * Everything the topic holds now, read up to its high watermarks: exact once
 * nothing writes to it any more (every producer stopped), so no pause for
 * late extras is needed. Not for a topic with transaction markers (they
 * take offsets but are never read).
 */
export function topicNow(bootstrap: string, topic: string): Promise<Consumed[]> {
  return consume(bootstrap, topic, { settleMs: 0, timeoutMs: 90_000 });
}

/**
 * Every id once in the topic: what is missing and how many are there more
 * than once. With `stopped` (no producer writes to the topic any more) the
 * topic is read to its end at once; otherwise reading goes on for a while
 * after the last id arrived, so a late duplicate is seen.
 */
export async function topicHolds(bootstrap: string, topic: string, ids: readonly string[], opts: { stopped?: boolean } = {}): Promise<{ missing: string[]; duplicated: number; total: number }> {
  const got = opts.stopped === true ? await topicNow(bootstrap, topic) : await consume(bootstrap, topic, { count: ids.length, settleMs: 3000, timeoutMs: 90_000 });
  const counts = idCounts(got.map((m) => m.value));
  return {
    missing: ids.filter((id) => !counts.has(id)),
    duplicated: [...counts.values()].reduce((n, c) => n + c - 1, 0),
    total: got.length,
  };
}

/**
 * A broker of the test file's own, for tests that stop, kill or pause it:
 * healed after each test (resumed, restarted if dead) so that one test's
 * fault never reaches the next. Topics are named `prefix-…`; `check` reads
 * back what one holds.
 */
export async function ownedBroker(t: Test, prefix: string) {
  const kafka = await startKafka({ owned: true });
  t.teardown(() => kafka.stop());
  t.afterEach(async () => {
    await kafka.resume();
    if (!kafka.alive()) await kafka.restart();
    await waitForMetadata(kafka.bootstrap, 5000).catch(() => kafka.restart());
  });
  return {
    kafka,
    newTopic: topicNamer(prefix),
    check: (topic: string, ids: readonly string[], opts: { stopped?: boolean } = {}) => topicHolds(kafka.bootstrap, topic, ids, opts),
  };
}
