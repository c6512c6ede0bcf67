// The Kafka broker for (d): started through test/helpers/kafka.ts in a
// helper process that can kill and restart it (the drain measurement), and
// warmed up before the measured rounds.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { wrk } from './load.mjs';
import { withScratchd } from './servers.mjs';
import { benchDir, log, node, root } from './util.mjs';

/** Seconds of unmeasured load on a freshly started broker before any (d) round. */
export const WARM_BROKER = 5;

/**
 * (d) needs the Kafka backend (src/kafka/backend.ts, wired in main.ts) and the broker
 * harness (test/helpers/kafka.ts, startKafka()). Returns null and a reason
 * when they are not there.
 */
export async function startKafkaIfAvailable() {
  if (!existsSync(join(root, 'src/kafka/backend.ts'))) return { kafka: null, reason: 'src/kafka/backend.ts (the Kafka backend) is not on this branch yet' };
  if (!existsSync(join(root, 'test/helpers/kafka.ts'))) return { kafka: null, reason: 'test/helpers/kafka.ts (startKafka(), the broker harness) is not on this branch yet' };
  if (!readFileSync(join(root, 'src/main.ts'), 'utf8').includes("'./kafka/backend.js'")) return { kafka: null, reason: 'src/main.ts does not start the Kafka backend yet (no import of ./kafka/backend.js)' };
  try {
    // The harness is TypeScript: run it through tsx (the suite's loader) in a
    // helper process (pinned to core 1 with wrk: the broker is part of the
    // load generator's side, not of the server under test) that prints the
    // broker list and keeps the broker up until it is killed.
    const helper = join(benchDir, 'kafka-broker.mts');
    log('(d): starting the broker (first time: Java and Kafka from Maven Central, a few minutes)');
    const tsImport = join(root, 'node_modules/tsx/dist/loader.mjs');
    const p = spawn('taskset', ['-c', '1', node, `--import=${tsImport}`, helper], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stderr.on('data', (c) => { out += c; });
    // "kill" / "restart" on the helper's stdin, answered by "DONE <command>".
    let waiter = null;
    p.stdout.setEncoding('utf8').on('data', (c) => {
      for (const m of c.matchAll(/^(DONE|FAILED) (\w+)(.*)$/gm)) waiter?.(m);
    });
    const command = (cmd) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`broker ${cmd}: no answer in 180 s`)), 180_000);
      waiter = (m) => {
        if (m[2] !== cmd) return;
        clearTimeout(t);
        waiter = null;
        if (m[1] === 'DONE') resolve();
        else reject(new Error(`broker ${cmd} failed:${m[3]}`));
      };
      p.stdin.write(`${cmd}\n`);
    });
    const brokers = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`broker not up in 180 s: ${out.slice(-2000)}`)), 180_000);
      p.stdout.setEncoding('utf8').on('data', (c) => {
        out += c;
        const m = /BROKERS (\S+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
      p.on('exit', (code) => reject(new Error(`broker helper exited ${code}: ${out.slice(-2000)}`)));
    });
    return { kafka: { brokers, command, pid: p.pid, stop: () => { p.stdin.end(); p.kill('SIGTERM'); } }, reason: null };
  } catch (err) {
    return { kafka: null, reason: `the broker did not start: ${err.message.split('\n')[0]}` };
  }
}

/** Load the fresh broker for WARM_BROKER s through scratchd (d) (see its caller). */
export async function warmBroker(ctx) {
  await withScratchd(ctx, ctx.kafkaConfigFile, () => wrk(ctx.ports.c, { seconds: WARM_BROKER, conns: ctx.settings.CONNS, script: ctx.script }));
}
