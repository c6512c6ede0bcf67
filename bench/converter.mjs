#!/usr/bin/env node
// The converter (`parseValues`) of several builds on the bench's queries, each
// build in a process of its own per round (the order rotating), so that a
// change to query/ is measured against the build before it on the same machine
// minutes: `node bench/converter.mjs ROUNDS DIR...` (DIR: a dist/, e.g. of a
// bench/build-rev.sh build; the first is the reference). Per build: the
// minimum and the median of its CPU ns per call, and the median of its
// per-round ratios to the first. A copy of the first build as a second DIR
// shows what the machine's noise alone makes of a ratio. In one process, two
// builds interfere (the second loaded ran 1.5x slower): hence one per run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const N = 300_000;

if (process.argv[2] === '--child') {
  const { parseValues } = await import(`${pathToFileURL(resolve(process.argv[3])).href}/query/index.js`);
  const queries = JSON.parse(readFileSync(process.argv[4], 'utf8'));
  const limits = { maxParams: 1000, maxDepth: 32 };
  let sink = 0;
  const call = (i) => { sink += parseValues(queries[i % queries.length], limits).length; };
  for (let i = 0; i < N / 10; i++) call(i);
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) call(i);
  const t = process.cpuUsage(t0);
  console.log(JSON.stringify({ ns: ((t.user + t.system) / N) * 1000, sink }));
  process.exit(0);
}

const [rounds, ...dirs] = process.argv.slice(2);
if (!(Number(rounds) > 0) || dirs.length === 0) {
  console.error('usage: node bench/converter.mjs ROUNDS DIR...');
  process.exit(2);
}
// The bench's queries, as bench/micro.mjs takes them.
const tmp = mkdtempSync(join(tmpdir(), 'scratchd-converter-'));
execFileSync(process.execPath, [new URL('./run.mjs', import.meta.url).pathname, '--rounds', '0', '--only', 'c', '--no-write', '--prep-only', tmp], { stdio: 'ignore' });
const lua = readFileSync(join(tmp, 'track.lua'), 'latin1');
const queries = [...lua.matchAll(/"(\/track\?[^"]*)"/g)].map((m) => Buffer.from(m[1].replace(/\\(\d+)/g, (_, d) => String.fromCharCode(Number(d))), 'latin1').toString('utf8').slice(7));
const file = join(tmp, 'queries.json');
writeFileSync(file, JSON.stringify(queries));

const run = (dir) => JSON.parse(execFileSync(process.execPath, [new URL(import.meta.url).pathname, '--child', dir, file], { encoding: 'utf8' })).ns;
const ns = dirs.map(() => []);
for (let r = 0; r < Number(rounds); r++) {
  for (let k = 0; k < dirs.length; k++) {
    const b = (k + r) % dirs.length;
    ns[b].push(run(dirs[b]));
  }
}
rmSync(tmp, { recursive: true, force: true });

const median = (v) => { const s = [...v].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
const x = (a, b) => `${(a / b).toFixed(3)}×`;
console.log(`${queries.length} queries, ${rounds} rounds; ns per call: min, median, median of per-round ratios to the first`);
for (let k = 0; k < dirs.length; k++) {
  const min = Math.min(...ns[k]), med = median(ns[k]), paired = median(ns[k].map((v, r) => v / ns[0][r]));
  console.log(`${dirs[k]}  min ${min.toFixed(0)} (${x(min, Math.min(...ns[0]))})  median ${med.toFixed(0)} (${x(med, median(ns[0]))})  paired ${paired.toFixed(3)}×`);
}
