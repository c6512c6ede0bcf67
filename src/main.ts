#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { notify, openNotify, startWatchdog } from './http/activation.js';
import { publicSockets, type PublicSockets } from './http/listen.js';
import { loadUws } from './http/uws.js';
import type { Backend, LossListener } from './backend.js';
import { ConfigError, type Config } from './config.js';
import { makeReloader, readCheckedConfig, type Reloader } from './reload.js';
import { newRequestCounters, type RequestCounters } from './http/counters.js';
import { FileBackend } from './file/backend.js';
import { isJournalStream, makeLogger, type Logger } from './log.js';
import { createMetrics } from './stats/metrics.js';
import { startGraphite } from './stats/graphite.js';
import type { Flavor } from './flavor.js';
import { startPrivacy } from './privacy/start.js';
import type { PrivacyState } from './privacy/policy.js';
import { LossTracker } from './losses.js';
import { DedupState } from './dedup/state.js';
import { makeIntake, type Intake } from './threads/intake.js';
import { startServing, type Serving } from './threads/serving.js';
import { sumCounters } from './threads/sum.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const usage = `Usage: scratchd --config FILE [--check]
       scratchd replay --config FILE ...   (scratchd replay --help)
       scratchd rebuild --config FILE ...  (scratchd rebuild --help)
       scratchd spool --config FILE   (the Kafka spool's state, read only)
       scratchd erase --config FILE ...    (scratchd erase --help)

Tracking-pixel daemon: answers /track beacons and writes each one as a JSON
line to per-flavor daily log files and Kafka topics.

  -c, --config FILE   configuration (JSON, see config.schema.json)
      --check         validate the configuration and exit (0 valid, 1 not)
  -v, --version       print the version and exit
  -h, --help          print this help and exit

Signals: SIGTERM/SIGINT drain and exit (a second one ends the drain at once:
what is still queued is reported lost, exit 2); SIGHUP reopens log files and
reloads the configuration (a config with errors is refused and the running one
stays; ignored while draining).
`;

/** What starts an error line on stderr: its journal priority when stderr is the journal (ExecStart=, ExecReload=). */
const errPrefix = (): string => (isJournalStream(2) ? '<3>' : '');

/** Print a one-line reason on stderr (priority err in the journal) and exit 1. */
function fail(reason: string): never {
  process.stderr.write(`${errPrefix()}scratchd: ${reason}\n`);
  process.exit(1);
}

function parseCommandLine(): { config: string; check: boolean } {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    fail(`${(err as Error).message} (try --help)`);
  }
  if (args.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  if (args.version) {
    process.stdout.write(`scratchd ${version}\n`);
    process.exit(0);
  }
  if (args.config === undefined) fail('--config FILE is required (try --help)');
  return { config: args.config, check: args.check === true };
}

/** The config and its text, or exit 1 listing every error (--check) or the first line of them. */
async function readConfig(file: string, check: boolean): Promise<{ config: Config; text: string }> {
  try {
    return await readCheckedConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (check) for (const e of err.errors) process.stderr.write(`${errPrefix()}${err.file}: ${e}\n`);
    fail(check ? `${err.file}: ${err.errors.length} error(s)` : err.message);
  }
}

async function startBackends(config: Config, log: Logger, onLoss: LossListener): Promise<Backend[]> {
  const backends: Backend[] = [];
  if (config.backends.file.enabled) backends.push(new FileBackend(config.backends.file, log.child({ component: 'file' }), config.flavors));
  if (config.backends.kafka.enabled) {
    const { KafkaBackend } = await import('./kafka/backend.js');
    backends.push(new KafkaBackend(config.backends.kafka, log.child({ component: 'kafka' }), config.flavors));
  }
  for (const b of backends) b.onLoss = onLoss;
  for (const b of backends) await b.start();
  return backends;
}

/** `scratchd NAME ...`: each subcommand is src/commands/NAME.ts, exporting run(argv) → exit code. */
const subcommands = new Set(['replay', 'rebuild', 'spool', 'erase']);

/** Signals as caught during start-up, and what each does: replaced once the daemon serves (onSignals). */
interface Signals {
  readonly early: { stop: string | null; hup: boolean };
  readonly on: { stop(signal: string): void; hup(): void };
}

/** What the daemon's parts share once started. */
interface Daemon {
  readonly configFile: string;
  readonly log: Logger;
  readonly backends: readonly Backend[];
  readonly losses: LossTracker;
  /** A drain has begun (a signal, or a serving thread failed). */
  stopping: boolean;
  serving: Serving | null;
}

async function main(): Promise<void> {
  const sub = process.argv[2];
  if (sub !== undefined && subcommands.has(sub)) {
    const command = (await import(`./commands/${sub}.js`)) as { run(argv: string[]): Promise<number> };
    process.exit(await command.run(process.argv.slice(3)));
  }
  const args = parseCommandLine();
  const signals = catchSignals();
  // Now, while fds are plenty: every later message goes out on this socket.
  const notifyError = openNotify();

  const { config, text: configText } = await readConfig(args.config, args.check);
  if (args.check) {
    process.stdout.write(`${args.config}: ok\n`);
    return;
  }
  const log = makeLogger(config.log.level);
  if (notifyError !== null) log.error({ err: notifyError, socket: process.env.NOTIFY_SOCKET }, 'cannot open the sd_notify socket');
  // Request heads: room for the longest query we accept plus ordinary headers.
  loadUws(config.limits.maxQueryBytes + 8192);

  const counters = newRequestCounters();
  const losses = new LossTracker({
    stateDir: config.stateDir, configFile: args.config, instance: config.instance, log: log.child({ component: 'losses' }),
    timeZones: new Map(config.flavors.map((f) => [f.name, f.timeZone])),
  });
  losses.start();
  const backends = await startBackends(config, log, losses.listener);
  const d: Daemon = { configFile: args.config, log, backends, losses, stopping: false, serving: null };
  // One dedup store per flavor for every thread; the threads' privacy counters summed here.
  const intake = makeIntake(backends, new DedupState(counters.dedup), config.flavors);
  // The flavor table in force: the start-up one until the reloader exists.
  let flavorsNow = (): readonly Flavor[] => config.flavors;
  // The salts' keeper runs here; every thread gets its salts after each pass.
  const privacy = startPrivacy(config.stateDir, () => flavorsNow(), log.child({ component: 'privacy' }),
    (salts) => d.serving?.salts(salts.all()));
  const closeStats = await startStats(d, config, counters, privacy.privacy);
  const { serving, sockets } = await startThreads(d, config, configText, intake, privacy, signals);
  d.serving = serving;

  const reloader = makeReloader(args.config, config, {
    serving, log,
    beforeThreads: (next) => {
      intake.useFlavors(next.flavors);
      // The new flavors' salts reach every thread before the config does (same port, in order).
      privacy.passFor(next.flavors);
    },
    applied: (next) => losses.useFlavors(next.flavors),
  });
  flavorsNow = () => reloader.current().flavors;
  onSignals(d, signals, reloader, sockets, closeStats);
  // Signals that came during start-up: a stop ends the start here, before
  // READY=1 (nothing is accepted before the next loop turn; the usual drain
  // closes what started), a SIGHUP is applied now.
  if (signals.early.stop !== null) {
    log.info({ signal: signals.early.stop }, 'stopped during start-up');
    signals.on.stop(signals.early.stop);
    return;
  }
  notify(log, 'READY=1');
  startWatchdog(log);
  if (signals.early.hup) signals.on.hup();
}

/**
 * Signals are caught from here on, before anything is started: a signal
 * that arrives during start-up waits for it to be done (SIGHUP), or ends it
 * as soon as that is clean (SIGTERM/SIGINT). Node's default would kill us.
 */
function catchSignals(): Signals {
  const early = { stop: null as string | null, hup: false };
  const on = {
    stop(signal: string): void {
      early.stop ??= signal;
    },
    hup(): void {
      early.hup = true;
    },
  };
  process.on('SIGTERM', () => on.stop('SIGTERM'));
  process.on('SIGINT', () => on.stop('SIGINT'));
  process.on('SIGHUP', () => on.hup());
  return { early, on };
}

/** /metrics, /stats, /health on the stats listener, and Graphite; returns what closes them at the end of a drain. */
async function startStats(d: Daemon, config: Config, counters: RequestCounters, privacy: PrivacyState): Promise<() => void> {
  const { log, backends, losses } = d;
  const { healthReport, serveStats } = await import('./stats/server.js');
  const metrics = createMetrics(counters, backends, {
    losses, privacy, build: { version, instance: config.instance },
    refresh: async () => {
      if (d.serving !== null) sumCounters(counters, privacy, await d.serving.counters());
    },
    threads: () => d.serving?.threads() ?? [],
  });
  // A stats port taken by another process must not stop the beacons: it is retried (serveStats).
  const stats = await serveStats(config.stats.listen, metrics, () => healthReport(d.stopping, backends),
    log.child({ component: 'stats' }));
  const graphite = config.stats.graphite &&
    startGraphite(config.stats.graphite, () => metrics.statsSnapshot(), log.child({ component: 'graphite' }), metrics.registry);
  // Graphite reads a snapshot without asking: the threads' counters are summed every second for it.
  if (graphite) setInterval(() => void metrics.refresh(), 1000).unref();
  return () => {
    stats.close();
    if (graphite) graphite.close();
    metrics.close();
  };
}

/** The public sockets and the serving threads on them; exits 1 when either cannot start. */
async function startThreads(
  d: Daemon, config: Config, configText: string, intake: Intake, privacy: ReturnType<typeof startPrivacy>, signals: Signals,
): Promise<{ serving: Serving; sockets: PublicSockets }> {
  const { log, losses } = d;
  const httpLog = log.child({ component: 'http' });
  const sockets = await publicSockets(config.listen).catch((err: Error) => fail(err.message));
  const threads = config.threads === 'auto' ? availableParallelism() : config.threads;
  const serving = await startServing({
    count: threads, configFile: d.configFile, configText, fds: sockets.fds, log,
    beforeAccepting: () => httpLog.info({ listen: sockets.address, version, threads, flavors: config.flavors.map((f) => f.name) }, 'serving'),
    salts: () => privacy.privacy.salts?.all() ?? [],
    onSaltMiss: privacy.passSoon,
    onLine: intake.line,
    prefetch: intake.prefetch,
    onRefused: (flavor, first, last, count) => {
      losses.listener('relay', flavor, first, 'relay_full', count);
      losses.listener('relay', flavor, last, 'relay_full', 0);
    },
    onFailure: (err) => {
      log.fatal({ err: err.message }, 'a serving thread failed; stopping');
      process.exitCode = 1;
      if (!d.stopping) signals.on.stop('serving thread failure'); // while draining, the drain goes on (not a second signal)
    },
  }).catch((err: Error) => fail(`serving threads: ${err.message}`));
  return { serving, sockets };
}

/** From now on SIGHUP reopens and reloads, SIGTERM/SIGINT drain (a second one cuts the drain short). */
function onSignals(d: Daemon, signals: Signals, reloader: Reloader, sockets: PublicSockets, closeStats: () => void): void {
  const { log, backends } = d;
  const serving = d.serving!;
  let draining: { cutShort(signal: string): void } | null = null;
  let cutEarly: string | null = null;
  signals.on.hup = () => {
    if (d.stopping) {
      // systemd has been told STOPPING=1: a RELOADING=1 now would confuse it.
      log.warn({ signal: 'SIGHUP' }, 'SIGHUP ignored: draining');
      return;
    }
    for (const b of backends) b.reopen();
    void reloader.reload();
  };
  signals.on.stop = (signal) => {
    if (d.stopping) {
      // The usual convention (nginx, Ctrl-C twice): a second signal shortens the drain.
      // One that comes before the threads said they drain cuts the drain as soon as it starts.
      if (draining === null) cutEarly = signal;
      else draining.cutShort(signal);
      return;
    }
    d.stopping = true;
    // Told and logged once every thread stopped accepting, answers 503 on
    // /health and closes each connection after its answer.
    void serving.drain().then(() => {
      // No thread accepts now: a connection the kernel took would wait unanswered, then be reset.
      sockets.close();
      notify(log, 'STOPPING=1');
      log.info({ signal }, 'draining');
      draining = drain(reloader.current(), log, async () => {
        await serving.close();
      }, backends, closeStats, d.losses);
      if (cutEarly !== null) draining.cutShort(cutEarly);
    });
  };
}

/** How long a drain cut short waits for the serving threads to hand over their last Lines. */
const GIVE_UP_CLOSE_MS = 1000;

/**
 * With the listener closed: let open connections finish what they send for
 * a grace period, close them, then drain every backend. Past the drain
 * timeout the Lines still queued are reported lost and the process exits 2.
 */
function drain(
  config: Config, log: Logger, closeConnections: () => Promise<void>, backends: readonly Backend[], closeStats: () => void,
  losses: LossTracker,
): { cutShort(signal: string): void } {
  const started = Date.now();
  let givingUp = false;
  const giveUp = (msg: string, fields: object): void => {
    if (givingUp) return;
    givingUp = true;
    // The threads close first and hand over their last Lines (for at most a
    // moment): then every Line answered 2xx is written or counted lost here.
    void Promise.race([closeConnections(), new Promise((r) => setTimeout(r, GIVE_UP_CLOSE_MS))]).then(() => {
      const lost = Object.fromEntries(backends.map((b) => [b.name, b.queued()]));
      log.error({ lost, ...fields }, msg);
      for (const b of backends) b.abandon?.();
      losses.closeAll();
      process.exit(2);
    });
  };
  const timer = setTimeout(() => giveUp('drain timed out; queued Lines lost', { drainTimeoutMs: config.shutdown.drainTimeoutMs }),
    config.shutdown.drainTimeoutMs);
  void (async () => {
    await new Promise((r) => setTimeout(r, config.shutdown.graceMs));
    // The threads close their connections and hand over their last Lines; then the backends drain.
    await closeConnections();
    // A backend that could not make its Lines durable (a failed fsync) rejects: exit 2, as for a timeout.
    const failed = (await Promise.allSettled(backends.map((b) => b.close())))
      .flatMap((r, i) => (r.status === 'rejected' ? [{ backend: backends[i]!.name, err: (r.reason as Error).message }] : []));
    clearTimeout(timer);
    if (givingUp) return; // cut short meanwhile: that path counts and exits 2
    losses.closeAll(); // windows still open are recorded before exit
    closeStats();
    const totals = Object.fromEntries(backends.map((b) => [b.name, b.counters]));
    if (failed.length > 0) {
      log.error({ ms: Date.now() - started, backends: totals, failed }, 'drained, but Lines may not be on disk');
      process.exit(2);
    }
    log.info({ ms: Date.now() - started, backends: totals }, 'drained');
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0); // 1 after a serving thread failed
  })();
  return { cutShort: (signal) => giveUp('drain cut short by a second signal; queued Lines lost', { signal }) };
}

await main();
