/**
 * A serving thread: its own uWS app accepting on the public sockets, the
 * whole request path (CORS, body, Rack converter, schema, privacy, the
 * Line's bytes, the answer), and a relay that hands the Lines to the main
 * thread once per event-loop turn. It holds no backend: node-rdkafka cannot
 * load in a worker, and one writer per day file is the file backend's rule.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { configFromText, type Config } from '../config.js';
import { makeLogger, setLogLevel } from '../log.js';
import { newRequestCounters } from '../http/counters.js';
import { threadSalts } from '../privacy/start.js';
import { PrivacyState } from '../privacy/policy.js';
import { loadUws } from '../http/uws.js';
import { serveSockets } from '../http/listen.js';
import type { FromThread, ThreadCounters, ThreadStart, ToThread } from './messages.js';
import { RelayWriter, type RelayBatch } from './relay.js';
import { seedHash } from '../dedup/hash.js';

const start = workerData as ThreadStart;
seedHash(start.hashSeed);
const port = parentPort!;
const send = (m: FromThread, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);

let config: Config;
try {
  config = configFromText(start.configFile, start.configText);
} catch (err) {
  send({ type: 'failed', message: (err as Error).message });
  process.exit(1);
}
// Its own lines, synchronous: a thread's few log lines are whole writes on the shared stdout.
const root = makeLogger(config.log.level, { sync: true });
const log = root.child({ component: 'http', thread: start.index });
// The main thread loaded uWS first with the same head limit (it sets the environment uWS reads).
loadUws(config.limits.maxQueryBytes + 8192);
const { makeHttp } = await import('../http/app.js');

const counters = newRequestCounters();
// The main thread's salts, one per flavor and day for the process; its keeper makes and destroys them.
const salts = threadSalts(config.stateDir, log.child({ component: 'privacy' }));
salts.adopt(start.salts);
salts.onMiss = () => send({ type: 'saltMiss' });
const privacy = new PrivacyState(salts);
const relay = new RelayWriter(new Int32Array(start.inFlight), config.limits.maxRelayBytes,
  (batch: RelayBatch) => send(batch, [batch.lines]), new Uint32Array(start.order));
const http = makeHttp(config, relay, counters, log, privacy, start.bodyMemory);

let accepting: { stop(): void } = { stop() {} };

const snapshot = (): ThreadCounters => ({ requests: counters, privacy: privacy.all() as Map<string, never> });

port.on('message', (m: ToThread) => {
  switch (m.type) {
    case 'accept':
      try {
        accepting = serveSockets(http.app, start.fds, log, start.acceptBatch);
      } catch (err) {
        send({ type: 'failed', message: (err as Error).message });
        process.exit(1);
      }
      send({ type: 'accepting' });
      return;
    case 'configure': {
      let next: Config;
      try {
        next = configFromText(start.configFile, m.text);
      } catch (err) {
        // The main thread checked this very text: only a bug gets here.
        send({ type: 'configured', error: (err as Error).message });
        return;
      }
      // One assignment per part between two requests: each request is
      // answered under one complete config, the old or the new.
      http.configure(next);
      relay.capacity = next.limits.maxRelayBytes;
      setLogLevel(root, next.log.level);
      config = next;
      send({ type: 'configured', error: null });
      return;
    }
    case 'salts':
      salts.adopt(m.all);
      return;
    case 'counters':
      relay.flush(); // the Lines counted are on their way before the counts
      send({ type: 'counters', id: m.id, counters: snapshot() });
      return;
    case 'drain':
      accepting.stop();
      http.drain();
      send({ type: 'drained' });
      return;
    case 'close':
      accepting.stop();
      http.app.close();
      relay.flush();
      send({ type: 'closed', counters: snapshot() });
      port.close();
      return;
  }
});

send({ type: 'ready' });
