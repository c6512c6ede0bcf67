#!/usr/bin/env node
// What one Kafka Line costs the main thread in node-rdkafka alone (issue 24,
// target 2): produce() as src/kafka/backend.ts calls it, in slices of 1024
// with a turn between (its PRODUCE_SLICE), delivery reports through
// setPollInterval(5) and a 'delivery-report' listener, until every report is
// in. Variants drop one argument at a time, to price it. CPU time of the
// main thread only (/proc/self/task/PID/schedstat), then µs per message.
//   node bench/kafka-produce.mjs BROKERS [messages (200000)]   (in the chroot; a broker with bench.gr, e.g. bench/kafka-broker.mts)
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const Kafka = createRequire(import.meta.url)('node-rdkafka');
const brokers = process.argv[2];
const N0 = Number(process.argv[3] ?? 200_000);
let N = N0;
const mainNs = () => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
const json = Buffer.from(JSON.stringify({ idsite: '1', rec: '1', url: 'https://www.example.gr/papoutsia?utm_source=news&p=0', action_name: 'Παπούτσια & τσάντες', _id: '0123456789abcdef', res: '1920x1080', lang: 'el-GR' }));
const headers = [{ flavor: 'gr' }, { instance: 'bench' }];

const VARIANTS = {
  'as scratchd (value, timestamp, opaque, 2 headers)': (p, i, o) => p.produce('bench.gr', null, json, null, Date.now(), o, headers),
  'no headers': (p, i, o) => p.produce('bench.gr', null, json, null, Date.now(), o),
  'no opaque': (p, i) => p.produce('bench.gr', null, json, null, Date.now(), undefined, headers),
  'value only': (p) => p.produce('bench.gr', null, json),
  'value only, no delivery reports (dr_cb off; flush() at the end)': (p) => p.produce('bench.gr', null, json),
};
/** As scratchd at half load: a few Lines per turn, ~32 every millisecond (setTimeout 1), not 1024 per turn. */
const PACED = 'as scratchd, paced: 32 per 1 ms timer instead of 1024 per turn';
VARIANTS[PACED] = VARIANTS['as scratchd (value, timestamp, opaque, 2 headers)'];

async function run(name, produce) {
  N = name === PACED ? Math.min(N0, 60_000) : N0;
  const reportsOn = !name.includes('no delivery reports');
  const p = new Kafka.Producer({ 'metadata.broker.list': brokers, dr_cb: reportsOn, 'linger.ms': 5, 'queue.buffering.max.messages': 1_000_000 });
  await new Promise((resolve, reject) => p.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve())));
  p.setPollInterval(5);
  let reports = 0;
  let done;
  const all = new Promise((r) => { done = r; });
  p.on('delivery-report', (err) => {
    if (err) throw err;
    if (++reports === N) done();
  });
  const t0 = mainNs();
  const w0 = performance.now();
  for (let i = 0; i < N; i++) {
    produce(p, i, { i });
    if (name === PACED ? i % 32 === 31 : i % 1024 === 1023) await new Promise((r) => (name === PACED ? setTimeout(r, 1) : setImmediate(r)));
  }
  await (reportsOn ? all : new Promise((resolve, reject) => p.flush(30_000, (err) => (err ? reject(err) : resolve()))));
  const us = (mainNs() - t0) / 1e3 / N;
  const wall = performance.now() - w0;
  await new Promise((r) => p.disconnect(r));
  console.log(`${us.toFixed(2).padStart(6)} µs main-thread CPU per message  ${name}  (${N} messages in ${(wall / 1000).toFixed(1)} s)`);
  return us;
}

for (let round = 0; round < 2; round++) {
  for (const [name, f] of Object.entries(VARIANTS)) await run(name, f);
}
