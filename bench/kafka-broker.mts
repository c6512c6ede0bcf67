// Bench helper for contender (d): starts the project's test broker
// (test/helpers/kafka.ts, startKafka()), creates the bench topics, prints
// "BROKERS host:port" and keeps the broker until stdin closes or SIGTERM.
// Run by bench/run.mjs through tap's TypeScript loader.
import { startKafka } from '../test/helpers/kafka.js';

const kafka = await startKafka();
for (const t of ['bench.gr', 'bench.tr', 'bench.uk']) await kafka.createTopic(t, 1);
process.stdout.write(`BROKERS ${kafka.bootstrap}\n`);
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await kafka.stop();
  process.exit(0);
};
process.stdin.on('end', stop).resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
