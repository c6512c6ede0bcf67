/**
 * `scratchd spool --config FILE`: the Kafka spool's state (records, bytes,
 * segments, oldest Line, per flavor, what recovery would find wrong),
 * read without changing a byte: safe beside a running scratchd.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { recoverSpool } from '../kafka/spool/open-scan.js';

const usage = `Usage: scratchd spool --config FILE [--json]

Prints the state of the Kafka disk spool configured in FILE
(backends.kafka.spool): Lines waiting, bytes, segments, the oldest Line,
per flavor. Reads only; changes nothing.
`;

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (err) {
    process.stderr.write(`scratchd spool: ${(err as Error).message}\n${usage}`);
    return 1;
  }
  if (args.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (args.config === undefined) {
    process.stderr.write(`scratchd spool: --config FILE is required\n${usage}`);
    return 1;
  }
  let spool;
  try {
    spool = loadConfig(args.config).backends.kafka.spool;
  } catch (err) {
    process.stderr.write(`scratchd spool: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    return 1;
  }
  if (spool === undefined || !spool.enabled) {
    process.stdout.write(`${args.config}: no Kafka spool configured\n`);
    return 0;
  }
  let r;
  try {
    r = await recoverSpool(spool.dir, true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stdout.write(`spool ${spool.dir}: empty (not created yet)\n`);
      return 0;
    }
    process.stderr.write(`scratchd spool: ${spool.dir}: ${(err as Error).message}\n`);
    return 1;
  }
  const flavors = Object.fromEntries([...r.perFlavor].sort(([a], [b]) => a.localeCompare(b))
    .map(([name, f]) => [name, { records: f.records, bytes: f.bytes, oldest: iso(f.oldest) }]));
  const records = [...r.perFlavor.values()].reduce((n, f) => n + f.records, 0);
  const bytes = r.segments.reduce((n, s) => n + s.bytes, 0);
  const oldestTimes = [...r.perFlavor.values()].map((f) => f.oldest).filter((t): t is number => t !== null);
  const state = {
    dir: spool.dir, records, bytes, segments: r.segments.length,
    oldest: iso(oldestTimes.length > 0 ? Math.min(...oldestTimes) : null),
    acked: r.acked, lastSeq: r.lastSeq, ledger: r.ledger, problems: r.problems, flavors,
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify(state)}\n`);
    return 0;
  }
  const out = [
    `spool ${state.dir}: ${records} Lines, ${bytes} bytes in ${state.segments} segment(s)${state.oldest ? `, oldest ${state.oldest}` : ''}`,
    `ledger: ${r.ledger}, acknowledged through sequence ${r.acked}, last sequence ${r.lastSeq}`,
    ...Object.entries(flavors).map(([n, f]) => `  ${n}: ${f.records} Lines, ${f.bytes} bytes, oldest ${f.oldest}`),
    ...r.problems.map((p) => `problem: ${p} (not changed; scratchd repairs it at start)`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
