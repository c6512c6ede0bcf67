#!/usr/bin/env node
// Prototype (bench only, not scratchd): scratchd's request path on N worker
// threads, each with its own uWS app fed by the socket hand-off on the same
// systemd-style listening fd (fd 3, passed by bench/scale/measure.mjs), and
// ONE set of backends on the main thread: each worker gathers its Lines and
// posts them in one transferred buffer per event-loop turn; the main thread
// turns them back into Lines for the one file writer per file (and the one
// Kafka producer). Prints the same 'drained' line as scratchd at SIGTERM so
// the runner can check the files.
//   node bench/scale/threads.mjs --config FILE --threads N   (fd 3: the listening socket)
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';

const dist = new URL('../../dist/', import.meta.url);
const { loadConfig } = await import(new URL('config.js', dist));

if (isMainThread) {
  const { values } = parseArgs({ options: { config: { type: 'string' }, threads: { type: 'string', default: '2' } } });
  const config = loadConfig(values.config);
  const { FileBackend } = await import(new URL('file/backend.js', dist));
  const { makeLogger } = await import(new URL('log.js', dist));
  const log = makeLogger(config.log.level);
  const backends = [new FileBackend(config.backends.file, log.child({ component: 'file' }))];
  if (config.backends.kafka.enabled) {
    const { KafkaBackend } = await import(new URL('kafka/backend.js', dist));
    backends.push(new KafkaBackend(config.backends.kafka, log.child({ component: 'kafka' })));
  }
  for (const b of backends) await b.start();
  const flavors = config.flavors;
  // One batch: [flavor u8][time f64][length u32][json bytes] per Line.
  const receive = (buf) => {
    const b = Buffer.from(buf);
    for (let at = 0; at < b.length;) {
      const flavor = flavors[b[at]];
      const time = b.readDoubleLE(at + 1);
      const len = b.readUInt32LE(at + 9);
      const line = { flavor, time, json: b.subarray(at + 13, at + 13 + len) };
      at += 13 + len;
      for (const be of backends) be.send(line);
    }
  };
  const workers = [];
  for (let i = 0; i < Number(values.threads); i++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { configFile: values.config } });
    w.on('message', receive);
    workers.push(new Promise((r) => w.on('exit', r)));
    w.stop = () => w.postMessage('stop');
    workers[i].worker = w;
  }
  process.stdout.write(`serving with ${values.threads} threads\n`);
  process.on('SIGTERM', async () => {
    for (const p of workers) p.worker.stop();
    await Promise.all(workers);
    await Promise.all(backends.map((b) => b.close()));
    log.info({ backends: Object.fromEntries(backends.map((b) => [b.name, b.counters])) }, 'drained');
    process.exit(0);
  });
} else {
  const config = loadConfig(workerData.configFile);
  // The app loads uWS through http/uws.js, which must be told the head limit first (as main.ts does).
  const { loadUws } = await import(new URL('http/uws.js', dist));
  loadUws(config.limits.maxQueryBytes + 8192);
  const { makeHttp } = await import(new URL('http/app.js', dist));
  const { acceptInto } = await import(new URL('http/activation.js', dist));
  const { newRequestCounters } = await import(new URL('http/counters.js', dist));
  const index = new Map(config.flavors.map((f, i) => [f, i]));
  let pending = [];
  let size = 0;
  let scheduled = false;
  const post = () => {
    scheduled = false;
    const out = Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (const l of pending) {
      out[at] = index.get(l.flavor);
      out.writeDoubleLE(l.time, at + 1);
      out.writeUInt32LE(l.json.length, at + 9);
      out.set(l.json, at + 13);
      at += 13 + l.json.length;
    }
    pending = [];
    size = 0;
    parentPort.postMessage(out.buffer, [out.buffer]);
  };
  // The worker's stand-in backend: hands Lines to the main thread, one batch per turn.
  const relay = {
    name: 'relay', counters: { persisted: 0, failed: 0, dropped: 0, retried: 0 }, onLoss() {},
    queued: () => pending.length, health: () => ({ state: 'ok' }), start: async () => {}, reopen() {}, close: async () => {},
    send(line) {
      pending.push(line);
      size += 13 + line.json.length;
      if (!scheduled) {
        scheduled = true;
        setImmediate(post);
      }
      return true;
    },
  };
  const http = makeHttp(config, [relay], newRequestCounters());
  const acceptor = acceptInto(http.app, 3);
  parentPort.on('message', (m) => {
    if (m !== 'stop') return;
    acceptor.stop();
    http.drain();
    setTimeout(() => {
      http.app.close();
      if (pending.length > 0) post();
      setImmediate(() => process.exit(0));
    }, 200);
  });
}
