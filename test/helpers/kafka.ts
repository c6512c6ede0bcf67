/**
 * A real, single-node Apache Kafka broker (KRaft, broker+controller in one
 * JVM) for tests.
 *
 *   const kafka = await startKafka();        // or startKafka({ owned: true })
 *   t.teardown(() => kafka.stop());
 *   kafka.bootstrap                          // "127.0.0.1:PORT"
 *   await kafka.pause(); await kafka.resume();   // SIGSTOP / SIGCONT
 *   await kafka.kill(); await kafka.restart();   // SIGKILL; same ports, same data
 *
 * Kafka itself comes from Maven Central (org.apache.kafka:kafka_2.13 and its
 * runtime dependencies, plus a log4j2 binding), fetched once with Maven into
 * KAFKA_CACHE (default /var/cache/scratchd-test/kafka-<version>); a stamp file
 * makes later runs skip Maven entirely. Java and Maven must be there already
 * (scripts/test-all.sh installs them before the suite).
 *
 * KAFKA_BOOTSTRAP=host:port: tests use that broker instead of starting one.
 * Its handle cannot be stopped, paused, killed or restarted (stop() is a
 * no-op, the others throw). Tests that need to break the broker ask for
 * `startKafka({ owned: true })`, which always starts a private broker, so
 * they run everywhere and never silently skip; they log that they ignore
 * KAFKA_BOOTSTRAP.
 *
 * Teardown: stop() in a tap teardown; in addition every broker started here
 * is SIGKILLed from a process 'exit' hook, and a tiny watchdog shell kills it
 * if this Node process dies without running hooks (SIGKILL, crash), so no
 * java process outlives the test run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Kafka from 'node-rdkafka';
import { stopProcess } from './sigstop.js';
import { sleep, stablePort } from './wait.js';

export const KAFKA_VERSION = process.env.KAFKA_VERSION ?? '4.1.1';
const LOG4J_VERSION = '2.24.3';
const SLF4J_VERSION = '2.0.17';

export interface KafkaBroker {
  /** host:port of the PLAINTEXT listener. */
  readonly bootstrap: string;
  /** True for a KAFKA_BOOTSTRAP broker this process does not control. */
  readonly external: boolean;
  /** The broker's stdout/stderr (log4j writes there); null for an external broker. */
  readonly logFile: string | null;
  /** SIGKILL, wait for exit, delete the broker's dir (log, data, JVM temp files). */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit; the data stays for restart(). */
  kill(): Promise<void>;
  /** SIGSTOP: the process and its sockets stay, nothing answers. */
  pause(): Promise<void>;
  /** SIGCONT. */
  resume(): Promise<void>;
  /** Stop (gracefully if running) and start again on the same ports and data; resolves when it answers. */
  restart(): Promise<void>;
  /** Its process runs (maybe paused): false once killed or stopped; always true for an external broker. */
  alive(): boolean;
  /** Create a topic and wait until it has a leader. */
  createTopic(name: string, partitions?: number, config?: Record<string, string>): Promise<void>;
  /** Change a topic's configs (Kafka's own ConfigCommand); owned brokers only. */
  alterTopic(name: string, config: Record<string, string>): Promise<void>;
}

export interface StartOptions {
  /** Always start a private broker, even when KAFKA_BOOTSTRAP is set (tests that kill/pause it). */
  owned?: boolean;
  /**
   * Extra server.properties lines for an owned broker, overriding the
   * defaults (e.g. 'auto.create.topics.enable=false'); implies `owned`.
   */
  props?: string[];
  /** The listener's and the controller's ports (default: free ones), e.g. to advertise a proxy in front of it. */
  ports?: { port: number; controllerPort: number };
}

export async function startKafka(opts: StartOptions = {}): Promise<KafkaBroker> {
  const external = process.env.KAFKA_BOOTSTRAP;
  if (external !== undefined && external !== '') {
    if (!opts.owned && opts.props === undefined) return externalBroker(external);
    console.error(`# KAFKA_BOOTSTRAP=${external} ignored here: this test kills/pauses its broker, so it starts its own`);
  }
  const software = ensureKafka();
  // Ports that stay free while a test has its broker killed (it restarts on them).
  const broker = new OwnedBroker(software, opts.ports?.port ?? await stablePort(), opts.ports?.controllerPort ?? await stablePort(), opts.props ?? []);
  broker.format();
  await broker.launch();
  return broker;
}

// ---------------------------------------------------------------- software

function sh(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error !== undefined || r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${what} failed: ${cmd} ${args.join(' ')} → ${r.error?.message ?? `exit ${r.status}`}\n${out}`);
  }
  return r.stdout;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** java and mvn: installed by scripts/test-all.sh before the suite (no test installs anything). */
function ensureJavaAndMaven(): void {
  if (have('java') && have('mvn')) return;
  throw new Error('java and mvn are missing: scripts/test-all.sh installs them (default-jre-headless, maven) before the suite; ' +
    'run the tests through it, or set KAFKA_BOOTSTRAP=host:port to use an existing broker');
}

/**
 * Run `fn` holding `path` (a directory: mkdir is atomic) as a lock across
 * processes: test files run in parallel, and two of them installing Java or
 * fetching Kafka into one cache at once would break each other. A dead
 * holder's lock is taken over.
 */
function withLock<T>(path: string, fn: () => T): T {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(path);
      writeFileSync(join(path, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(path, 'pid'), 'utf8'));
      } catch { /* being created or removed */ }
      if (Number.isInteger(holder) && holder > 0 && !existsSync(`/proc/${holder}`)) rmSync(path, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${path} held by pid ${holder} for 15 minutes`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500); // a synchronous sleep: the callers are synchronous
    }
  }
  try {
    return fn();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

interface Software {
  /** Kafka's jars. */
  libs: string;
  /** A formatted KRaft log dir (meta.properties, bootstrap.checkpoint) to copy for each broker. */
  formatted: string;
  /** A class-data archive of a broker's start for this JVM, or null when none could be made. */
  archive: string | null;
}

/** Kafka's jars, fetched from Maven Central once, and a formatted log dir made once. */
function ensureKafka(): Software {
  const cache = process.env.KAFKA_CACHE ?? `/var/cache/scratchd-test/kafka-${KAFKA_VERSION}`;
  const libs = join(cache, 'libs');
  const stamp = join(cache, 'complete');
  const formatted = join(cache, 'formatted');
  const javaKey = have('java') ? jvmKey() : '';
  const archive = join(cache, `broker-${javaKey}.jsa`);
  const noArchive = `${archive}.failed`;
  const ready = (): boolean => existsSync(stamp) && existsSync(join(formatted, 'meta.properties')) &&
    javaKey !== '' && (existsSync(archive) || existsSync(noArchive));
  if (!ready()) {
    withLock(`${cache}.lock`, () => {
      installKafka(cache, libs, stamp);
      if (!existsSync(join(formatted, 'meta.properties'))) formatOnce(libs, formatted);
      const key = jvmKey();
      const a = join(cache, `broker-${key}.jsa`);
      if (!existsSync(a) && !existsSync(`${a}.failed`)) archiveOnce(libs, formatted, a);
    });
    return ensureKafka();
  }
  return { libs, formatted, archive: existsSync(archive) ? archive : null };
}

/** Names this JVM install: a class-data archive works only with the JVM that made it. */
function jvmKey(): string {
  const java = realpathSync(sh('sh', ['-c', 'command -v java'], 'finding java').trim());
  return createHash('sha256').update(`${java}:${statSync(java).mtimeMs}:${statSync(join(dirname(java), '..', 'lib', 'server', 'libjvm.so'), { throwIfNoEntry: false })?.mtimeMs ?? 0}`)
    .digest('hex').slice(0, 16);
}

/**
 * Start a broker once with -XX:ArchiveClassesAtExit and stop it: the
 * archive of the classes it loaded cuts the CPU every later broker start
 * spends loading them by about a third, which counts when four test files
 * start brokers at once on two cores. On failure a marker says so, and
 * brokers start without it.
 */
function archiveOnce(libs: string, formatted: string, archive: string): void {
  const work = mkdtempSync(join(dirname(formatted), 'archiving-'));
  try {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const props = join(work, 'server.properties');
    cpSync(formatted, join(work, 'data'), { recursive: true });
    mkdirSync(join(work, 'tmp'));
    writeFileSync(props, brokerProps(port, port + 1, join(work, 'data'), []));
    const java = ['java', `-XX:ArchiveClassesAtExit=${archive}`, ...JVM_OPTS, `-Djava.io.tmpdir=${join(work, 'tmp')}`,
      `-Dlog4j2.configurationFile=${join(libs, '..', 'log4j2.properties')}`, '-cp', `'${libs}/*'`, 'kafka.Kafka', props];
    const log = join(work, 'broker.log');
    console.error('# archiving the test broker\'s classes for faster starts (once)');
    spawnSync('sh', ['-c', `${java.join(' ')} >${log} 2>&1 & p=$!; i=0; ` +
      `while [ $i -lt 600 ] && kill -0 $p 2>/dev/null && ! grep -q 'Kafka Server started' ${log}; do sleep 0.2; i=$((i+1)); done; ` +
      `kill -TERM $p; wait $p`], { stdio: 'ignore', timeout: 300_000 });
    if (!existsSync(archive)) writeFileSync(`${archive}.failed`, readFileSync(log, 'utf8').slice(-4000));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Format a KRaft log dir once and keep it: every test broker is node 1 of
 * its own one-node cluster, so they can all start from copies of the same
 * two files (the format does not depend on ports or paths), and a broker
 * start saves a JVM run of StorageTool.
 */
function formatOnce(libs: string, formatted: string): void {
  const work = mkdtempSync(join(dirname(formatted), 'formatting-'));
  try {
    const props = join(work, 'server.properties');
    writeFileSync(props, [
      'process.roles=broker,controller',
      'node.id=1',
      'controller.quorum.voters=1@127.0.0.1:1',
      'listeners=PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:1',
      'controller.listener.names=CONTROLLER',
      `log.dirs=${join(work, 'data')}`,
      '',
    ].join('\n'));
    sh('java', [...JVM_OPTS, `-Djava.io.tmpdir=${work}`, `-Dlog4j2.configurationFile=${join(libs, '..', 'log4j2.properties')}`, '-cp', `${libs}/*`,
      'kafka.tools.StorageTool', 'format', `--cluster-id=${kafkaUuid()}`, `--config=${props}`], 'formatting a KRaft log dir');
    rmSync(formatted, { recursive: true, force: true });
    renameSync(join(work, 'data'), formatted);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function installKafka(cache: string, libs: string, stamp: string): string {
  ensureJavaAndMaven();
  if (existsSync(stamp)) return libs;
  rmSync(join(cache, 'formatted'), { recursive: true, force: true }); // made from these jars
  mkdirSync(cache, { recursive: true });
  rmSync(libs, { recursive: true, force: true });
  // slf4j 2 + log4j2's binding: Kafka logs through slf4j; without a binding
  // it logs nothing at all, and a failing broker would be a mystery.
  const dep = (g: string, a: string, v: string): string =>
    `<dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`;
  writeFileSync(join(cache, 'pom.xml'), `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>scratchd.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    ${dep('org.apache.kafka', 'kafka_2.13', KAFKA_VERSION)}
    ${dep('org.slf4j', 'slf4j-api', SLF4J_VERSION)}
    ${dep('org.apache.logging.log4j', 'log4j-api', LOG4J_VERSION)}
    ${dep('org.apache.logging.log4j', 'log4j-core', LOG4J_VERSION)}
    ${dep('org.apache.logging.log4j', 'log4j-slf4j2-impl', LOG4J_VERSION)}
  </dependencies>
</project>
`);
  console.error(`# fetching Apache Kafka ${KAFKA_VERSION} from Maven Central into ${cache} (once)`);
  sh('mvn', ['-B', '-q', '-f', join(cache, 'pom.xml'), 'dependency:copy-dependencies',
    '-DincludeScope=runtime', `-DoutputDirectory=${libs}`], `fetching Kafka ${KAFKA_VERSION} with Maven`);
  if (!existsSync(join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`))) throw new Error(`Maven did not produce ${libs}/kafka_2.13-${KAFKA_VERSION}.jar`);
  writeFileSync(join(cache, 'log4j2.properties'), [
    'status = warn',
    'appender.out.type = Console',
    'appender.out.name = out',
    'appender.out.layout.type = PatternLayout',
    'appender.out.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = info',
    'rootLogger.appenderRef.out.ref = out',
    // The interesting lines are the broker's own; these are chatty.
    'logger.state.name = state.change.logger',
    'logger.state.level = warn',
    'logger.cleaner.name = kafka.log.LogCleaner',
    'logger.cleaner.level = warn',
    '',
  ].join('\n'));
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  return libs;
}

// ---------------------------------------------------------------- broker

/** server.properties of a one-node test cluster; `extraProps` lines win. */
function brokerProps(port: number, controllerPort: number, dataDir: string, extraProps: string[]): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'log.segment.bytes=1048576',
    'log.retention.check.interval.ms=600000',
    'num.network.threads=2',
    'num.io.threads=2',
    'num.recovery.threads.per.data.dir=1',
    // Fewer threads to start on a shared 2-core machine; no compaction (and
    // its 128 MiB dedupe buffer) for topics that live a few minutes.
    'background.threads=2',
    'group.coordinator.threads=1',
    'log.cleaner.enable=false',
    // A broker SIGKILLed and started again registers anew, and the
    // controller refuses that (DUPLICATE_BROKER_REGISTRATION) until the old
    // registration's session times out: 9 s by default, on every restart.
    'broker.heartbeat.interval.ms=500',
    'broker.session.timeout.ms=2000',
    ...extraProps, // later lines win
    '',
  ].join('\n');
}

const JVM_OPTS = ['-Xmx512m', '-Xms64m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto', '-Djava.awt.headless=true'];

/** Kafka's Uuid text form: 16 random bytes, base64url, no padding. */
function kafkaUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id; // a leading '-' would read as an option
  }
}

const live = new Set<ChildProcess>();
/** Brokers' dirs not yet removed by stop(). */
const dirs = new Set<string>();
const keepLogs = (): boolean => Boolean(process.env.KAFKA_KEEP_LOGS);
process.once('exit', () => {
  for (const p of live) try { p.kill('SIGKILL'); } catch { /* gone */ }
  if (!keepLogs()) for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

class OwnedBroker implements KafkaBroker {
  readonly external = false;
  readonly bootstrap: string;
  readonly logFile: string;
  private readonly dir: string;
  private readonly props: string;
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly software: Software, readonly port: number, readonly controllerPort: number, extraProps: string[] = []) {
    this.bootstrap = `127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), 'scratchd-kafka-'));
    // The JVM's own temp files (liblz4-java-*.so and the like) go with the broker's dir.
    mkdirSync(join(this.dir, 'tmp'));
    dirs.add(this.dir);
    this.logFile = join(this.dir, 'broker.log');
    this.props = join(this.dir, 'server.properties');
    writeFileSync(this.props, brokerProps(port, controllerPort, join(this.dir, 'data'), extraProps));
  }

  private java(main: string, args: string[]): string[] {
    const libs = this.software.libs;
    return [
      ...(this.software.archive !== null ? [`-XX:SharedArchiveFile=${this.software.archive}`] : []),
      ...JVM_OPTS,
      `-Djava.io.tmpdir=${join(this.dir, 'tmp')}`,
      `-Dlog4j2.configurationFile=${join(libs, '..', 'log4j2.properties')}`,
      '-cp', `${libs}/*`, main, ...args,
    ];
  }

  /** The log dir, from the formatted copy made once. */
  format(): void {
    cpSync(this.software.formatted, join(this.dir, 'data'), { recursive: true });
  }

  async launch(): Promise<void> {
    const fd = openSync(this.logFile, 'a');
    const proc = spawn('java', this.java('kafka.Kafka', [this.props]), { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.proc = proc;
    live.add(proc);
    this.exited = new Promise((resolve) => proc.once('exit', () => { live.delete(proc); resolve(); }));
    // If this Node process dies without running its exit hook, take the broker with it.
    if (proc.pid !== undefined) {
      const rm = keepLogs() ? ':' : `rm -rf '${this.dir}'`;
      spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${proc.pid} 2>/dev/null; do sleep 1; done; ` +
        `if ! kill -0 ${process.pid} 2>/dev/null; then kill -9 ${proc.pid} 2>/dev/null; ${rm}; fi`],
        { stdio: 'ignore', detached: true }).unref();
    }
    let gone = false;
    void this.exited.then(() => { gone = true; });
    try {
      await waitForMetadata(this.bootstrap, 120_000, () => gone);
    } catch (err) {
      const tail = existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').split('\n').slice(-40).join('\n') : '';
      await this.kill();
      throw new Error(`Kafka broker did not come up (${(err as Error).message}); log: ${this.logFile}\n${tail}`);
    }
  }

  async stop(): Promise<void> {
    // Its data is deleted next: nothing to shut down cleanly for.
    await this.kill();
    if (!keepLogs()) {
      rmSync(this.dir, { recursive: true, force: true });
      dirs.delete(this.dir);
    }
  }

  private async terminate(): Promise<void> {
    const proc = this.proc;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT'); // a paused broker cannot act on SIGTERM
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await this.exited;
  }

  alive(): boolean {
    const proc = this.proc;
    return proc !== null && proc.exitCode === null && proc.signalCode === null;
  }

  async pause(): Promise<void> {
    // Resolves once the broker is stopped, not when the signal is sent (sigstop.ts).
    if (this.proc) await stopProcess(this.proc);
  }

  async resume(): Promise<void> {
    this.proc?.kill('SIGCONT');
  }

  async restart(): Promise<void> {
    await this.terminate();
    // The old process's listening sockets are gone with it; Java binds with SO_REUSEADDR.
    await this.launch();
  }

  createTopic(name: string, partitions = 1, config?: Record<string, string>): Promise<void> {
    return createTopic(this.bootstrap, name, partitions, config);
  }

  async alterTopic(name: string, config: Record<string, string>): Promise<void> {
    const args = ['--bootstrap-server', this.bootstrap, '--alter', '--entity-type', 'topics', '--entity-name', name,
      '--add-config', Object.entries(config).map(([k, v]) => `${k}=${v}`).join(',')];
    const proc = spawn('java', this.java('kafka.admin.ConfigCommand', args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    proc.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
    if (code !== 0) throw new Error(`alterTopic ${name}: exit ${code}\n${out.slice(-2000)}`);
  }
}

function externalBroker(bootstrap: string): KafkaBroker {
  const refuse = (what: string) => async (): Promise<void> => {
    throw new Error(`cannot ${what} the KAFKA_BOOTSTRAP broker ${bootstrap}: use startKafka({ owned: true }) in tests that break the broker`);
  };
  return {
    bootstrap,
    external: true,
    logFile: null,
    stop: async () => {},
    kill: refuse('kill'),
    pause: refuse('pause'),
    resume: refuse('resume'),
    restart: refuse('restart'),
    alive: () => true,
    createTopic: (name, partitions = 1, config) => createTopic(bootstrap, name, partitions, config),
    alterTopic: refuse('alter a topic of'),
  };
}

// ---------------------------------------------------------------- clients

/** Resolves once the broker answers a metadata request listing itself. */
export async function waitForMetadata(bootstrap: string, timeoutMs: number, abort: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (abort()) throw new Error('broker process exited');
    try {
      const md = await metadata(bootstrap, undefined, 3000);
      if (md.brokers.length > 0) return;
      last = 'metadata without brokers';
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`no metadata from ${bootstrap} within ${timeoutMs} ms: ${last}`);
}

export function metadata(bootstrap: string, topic: string | undefined, timeout: number): Promise<Kafka.Metadata> {
  const p = new Kafka.Producer({
    'metadata.broker.list': bootstrap, 'client.id': 'scratchd-test-metadata', 'log.connection.close': false,
    // A broker still starting refuses connections: try again within a moment, not after librdkafka's growing backoff.
    'reconnect.backoff.ms': 50, 'reconnect.backoff.max.ms': 250,
  });
  return new Promise((resolve, reject) => {
    p.connect({ timeout, ...(topic !== undefined ? { topic } : {}) }, (err, md) => {
      if (err) {
        reject(new Error(err.message));
        return;
      }
      p.disconnect(() => resolve(md));
    });
  });
}

async function createTopic(bootstrap: string, name: string, partitions: number, config?: Record<string, string>): Promise<void> {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': bootstrap, 'client.id': 'scratchd-test-admin' });
  try {
    await new Promise<void>((resolve, reject) => {
      admin.createTopic({ topic: name, num_partitions: partitions, replication_factor: 1, ...(config ? { config } : {}) }, 30_000, (err) => {
        // 36 = TOPIC_ALREADY_EXISTS: fine for reruns against a shared broker.
        if (err && err.code !== 36) reject(new Error(`createTopic ${name}: ${err.message}`));
        else resolve();
      });
    });
  } finally {
    admin.disconnect();
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const md = await metadata(bootstrap, name, 5000).catch(() => null);
    const t = md?.topics.find((x) => x.name === name);
    if (t !== undefined && t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0)) return;
    await sleep(200);
  }
  throw new Error(`topic ${name} has no leader after 30 s`);
}
