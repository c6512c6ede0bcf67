/**
 * The serving threads, seen from the main thread: started on the public
 * sockets, fed each config the main thread accepted, asked for their
 * counters when /stats or /metrics is read, drained and closed at shutdown.
 * Their Lines arrive through the relay (relay.ts) and go to `onLine`.
 */
import { randomBytes } from 'node:crypto';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { FromThread, ThreadCounters, ThreadStart, ToThread } from './messages.js';
import { InOrder } from './in-order.js';
import { prefetchKeys, unpack, type DedupKey, type RelayBatch } from './relay.js';

/** How long a thread may take to answer a counters request or a config before it is left out (its last counters stand in). */
const ANSWER_MS = 2000;
/** Per-thread event-loop utilization is measured over this window. */
const ELU_WINDOW_MS = 5000;

export interface ServingOptions {
  count: number;
  configFile: string;
  configText: string;
  fds: readonly number[];
  log: Logger;
  /** Every thread is ready and none accepts yet: log that the process serves (before any answer). */
  beforeAccepting(): void;
  /** A relayed Line, on the main thread. */
  onLine(flavor: string, time: number, json: Buffer, key: DedupKey | null): void;
  /** Before a batch's onLine calls, for each of its dedup keys (Intake.prefetch). */
  prefetch(flavor: string, lo: number, ahead: number): void;
  /** Lines a thread refused because its relay was full. */
  onRefused(flavor: string, first: number, last: number, count: number): void;
  /** A thread ended that was not asked to: the process must stop. */
  onFailure(err: Error): void;
  /** Every privacy salt now (the threads start with them). */
  salts(): [string, string, Uint8Array][];
  /** A thread found no salt for a hit's day. */
  onSaltMiss(): void;
}

export interface ThreadStats {
  /** Event-loop utilization over the last few seconds, 0..1. */
  utilization: number;
  /** Bytes relayed and not yet taken by the main thread. */
  relayBytes: number;
}

export interface Serving {
  readonly count: number;
  /** Every thread serves the config in `text` from its next request on; resolves when all have it. */
  configure(text: string): Promise<void>;
  /** Each thread's counters, fresh (its Lines so far relayed before them), or the last known. */
  counters(): Promise<ThreadCounters[]>;
  threads(): ThreadStats[];
  /** Every privacy salt, after each pass of the keeper. */
  salts(all: [string, string, Uint8Array][]): void;
  /** Stop accepting; /health 503; every answer closes its connection. Resolves when every thread does. */
  drain(): Promise<void>;
  /** Close every connection, take the last Lines; resolves when every thread ended. */
  close(): Promise<void>;
}

interface Thread {
  worker: Worker;
  inFlight: Int32Array;
  last: ThreadCounters | null;
  ended: boolean;
  elu: EventLoopUtilization;
  utilization: number;
  /** Waiting for its answer to a config. */
  onConfigured: ((error: string | null) => void) | null;
  /** Waiting for it to say it drains. */
  onDrained: (() => void) | null;
}

/** What the main thread keeps of its serving threads, shared by the steps below. */
interface Pool {
  readonly o: ServingOptions;
  readonly threads: Thread[];
  /** Per thread: resolves at `ready`, then again (a new promise) at `accepting`; rejects at `failed`. */
  readonly phase: { resolve: () => void; reject: (err: Error) => void }[];
  /** Counters requests waiting for their thread's answer, by id. */
  readonly waiting: Map<number, (c: ThreadCounters | null) => void>;
  /** Relayed batches, handed to `onLine` in the order they were numbered. */
  readonly inOrder: InOrder<[Thread, RelayBatch]>;
  nextId: number;
  closing: boolean;
  failed: boolean;
  /** False until every thread accepts: a thread that fails at start rejects startServing instead. */
  running: boolean;
}

export async function startServing(o: ServingOptions): Promise<Serving> {
  const take = ([t, b]: [Thread, RelayBatch]): void => {
    if (b.keyed) prefetchKeys(b.lines, o.prefetch);
    unpack(b.lines, o.onLine);
    Atomics.sub(t.inFlight, 0, b.lines.byteLength);
    for (const [flavor, first, last, count] of b.refused) o.onRefused(flavor, first, last, count);
  };
  const pool: Pool = {
    o, threads: [], phase: [], waiting: new Map(), inOrder: new InOrder(take), nextId: 1, closing: false, failed: false, running: false,
  };
  await acceptAll(pool, spawnAll(pool));
  pool.running = true;
  return servingOf(pool, measureUtilization(pool.threads));
}

/** A thread ended that was not asked to, once serving: the process must stop. */
function fail(pool: Pool, err: Error): void {
  if (!pool.running || pool.closing || pool.failed) return;
  pool.failed = true;
  pool.o.onFailure(err);
}

/** Start every thread; each promise resolves when its thread is ready. */
function spawnAll(pool: Pool): Promise<void>[] {
  const { o } = pool;
  const shared = {
    configFile: o.configFile, configText: o.configText, fds: o.fds,
    // Threads that share a socket take one connection per wake-up, so a
    // burst of connections spreads over them.
    acceptBatch: o.count === 1 ? 64 : 1,
    order: new SharedArrayBuffer(4), bodyMemory: new SharedArrayBuffer(8), hashSeed: randomBytes(8),
  };
  const started: Promise<void>[] = [];
  for (let index = 0; index < o.count; index++) {
    const inFlight = new SharedArrayBuffer(4);
    const start: ThreadStart = {
      index, ...shared, inFlight, salts: o.salts(),
      testClock: (globalThis as { [k: symbol]: unknown })[Symbol.for('scratchd.testClock')] as SharedArrayBuffer | undefined,
    };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: start });
    const t: Thread = {
      worker, inFlight: new Int32Array(inFlight), last: null, ended: false,
      elu: worker.performance.eventLoopUtilization(), utilization: 0, onConfigured: null, onDrained: null,
    };
    pool.threads.push(t);
    started.push(new Promise<void>((resolve, reject) => {
      pool.phase[index] = { resolve, reject };
      listen(pool, t, index);
    }));
  }
  return started;
}

/** A thread's messages and its end, routed to whoever waits for them. */
function listen(pool: Pool, t: Thread, index: number): void {
  t.worker.on('message', (m: FromThread) => {
    switch (m.type) {
      case 'lines':
        pool.inOrder.arrived(m.seq, [t, m]);
        return;
      case 'ready':
      case 'accepting':
        pool.phase[index]!.resolve();
        return;
      case 'failed':
        pool.phase[index]!.reject(new Error(m.message));
        return;
      case 'configured':
        t.onConfigured?.(m.error);
        t.onConfigured = null;
        return;
      case 'counters':
        t.last = m.counters;
        pool.waiting.get(m.id)?.(m.counters);
        return;
      case 'saltMiss':
        pool.o.onSaltMiss();
        return;
      case 'drained':
        t.onDrained?.();
        t.onDrained = null;
        return;
      case 'closed':
        t.last = m.counters;
        return;
    }
  });
  t.worker.on('error', (err) => {
    pool.phase[index]!.reject(err);
    fail(pool, err);
  });
  t.worker.on('exit', (code) => {
    t.ended = true;
    pool.phase[index]!.reject(new Error(`serving thread ${index} ended at start (exit ${code})`));
    fail(pool, new Error(`serving thread ${index} ended (exit ${code})`));
  });
}

/** Once every thread is ready, let them accept; if any fails at start, end them all and throw. */
async function acceptAll(pool: Pool, started: Promise<void>[]): Promise<void> {
  try {
    await Promise.all(started);
    // Every thread is ready; they accept only now, after the main thread
    // said it serves, so no answer comes before that log line.
    pool.o.beforeAccepting();
    await Promise.all(pool.threads.map((t, i) => new Promise<void>((resolve, reject) => {
      pool.phase[i] = { resolve, reject };
      t.worker.postMessage({ type: 'accept' } satisfies ToThread);
    })));
  } catch (err) {
    pool.closing = true;
    await Promise.all(pool.threads.map((t) => t.worker.terminate()));
    throw err;
  }
}

/** Each thread's event-loop utilization, measured every ELU_WINDOW_MS. */
function measureUtilization(threads: readonly Thread[]): NodeJS.Timeout {
  const eluTimer = setInterval(() => {
    for (const t of threads) {
      if (t.ended) continue;
      const now = t.worker.performance.eventLoopUtilization();
      t.utilization = t.worker.performance.eventLoopUtilization(now, t.elu).utilization;
      t.elu = now;
    }
  }, ELU_WINDOW_MS);
  eluTimer.unref();
  return eluTimer;
}

function post(t: Thread, m: ToThread): void {
  if (!t.ended) t.worker.postMessage(m);
}

/** The thread's answer through `register`, or `fallback` after ANSWER_MS. */
function answerOf<T>(register: (done: (v: T) => void) => void, fallback: T): Promise<T> {
  return new Promise<T>((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ANSWER_MS);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

/** The running threads, as the main thread drives them. */
function servingOf(pool: Pool, eluTimer: NodeJS.Timeout): Serving {
  const { o, threads, waiting } = pool;
  let closed: Promise<void> | null = null;
  return {
    count: o.count,
    async configure(text) {
      const results = await Promise.all(threads.filter((t) => !t.ended).map((t) => answerOf<string | null>((done) => {
        t.onConfigured = done;
        post(t, { type: 'configure', text });
      }, 'no answer')));
      const failed = results.filter((r) => r !== null);
      if (failed.length > 0) o.log.error({ errors: failed }, 'a serving thread could not apply the config');
    },
    async counters() {
      return Promise.all(threads.map((t) => {
        if (t.ended) return Promise.resolve(t.last);
        const id = pool.nextId++;
        return answerOf<ThreadCounters | null>((done) => {
          waiting.set(id, done);
          post(t, { type: 'counters', id });
        }, t.last).finally(() => waiting.delete(id));
      })).then((all) => all.filter((c): c is ThreadCounters => c !== null));
    },
    salts(all) {
      for (const t of threads) post(t, { type: 'salts', all });
    },
    threads: () => threads.map((t) => ({ utilization: t.utilization, relayBytes: Atomics.load(t.inFlight, 0) })),
    async drain() {
      await Promise.all(threads.filter((t) => !t.ended).map((t) => answerOf<null>((done) => {
        t.onDrained = () => done(null);
        post(t, { type: 'drain' });
      }, null)));
    },
    close() {
      // Once: the drain and a drain cut short may both ask.
      closed ??= (async () => {
        pool.closing = true;
        clearInterval(eluTimer);
        const ended = threads.map((t) => (t.ended ? Promise.resolve() : new Promise<void>((resolve) => t.worker.once('exit', () => resolve()))));
        for (const t of threads) post(t, { type: 'close' });
        await Promise.all(ended);
        pool.inOrder.flush();
      })();
      return closed;
    },
  };
}
