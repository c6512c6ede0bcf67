// Bench helper for contender (d) and the spool drain: starts the project's
// test broker (test/helpers/kafka.ts, startKafka()), creates the bench topics,
// prints "BROKERS host:port" and keeps the broker until stdin closes or
// SIGTERM. Lines on stdin break and mend it for the drain measurement:
// "kill" (SIGKILL, data kept) and "restart" (same ports and data, once it
// answers); each prints "DONE <command>" (or "FAILED <command> <why>").
// Run by bench/run.mjs through tap's TypeScript loader.
import { startKafka } from '../test/helpers/kafka.js';

const kafka = await startKafka({ owned: true });
for (const t of ['bench.gr', 'bench.tr', 'bench.uk']) await kafka.createTopic(t, 1);
process.stdout.write(`BROKERS ${kafka.bootstrap}\n`);
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await kafka.stop();
  process.exit(0);
};
let pending = '';
let queue = Promise.resolve();
process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
  pending += chunk;
  for (let nl; (nl = pending.indexOf('\n')) >= 0;) {
    const cmd = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    const act = cmd === 'kill' ? () => kafka.kill() : cmd === 'restart' ? () => kafka.restart() : null;
    if (act === null) continue;
    queue = queue.then(act).then(
      () => { process.stdout.write(`DONE ${cmd}\n`); },
      (err: unknown) => { process.stdout.write(`FAILED ${cmd} ${String(err).split('\n')[0]}\n`); },
    );
  }
});
process.stdin.on('end', stop).resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
