#!/usr/bin/env node
// Per-request costs of scratchd's JS pieces, in isolation, on the bench's
// queries: `node bench/micro.mjs` (after a build). CPU time per call.
// `node bench/micro.mjs DIR` times the build in DIR (e.g. a copy of dist/ from
// another revision) on the same queries, to alternate two builds in one run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = pathToFileURL(resolve(process.argv[2] ?? new URL('../dist', import.meta.url).pathname)).href;
const { parseValues } = await import(`${dist}/query/index.js`);
const { flavorLookup, makeFlavor } = await import(`${dist}/flavor.js`);

const dir = mkdtempSync(join(tmpdir(), 'scratchd-micro-'));
execFileSync(process.execPath, [new URL('./run.mjs', import.meta.url).pathname, '--rounds', '0', '--only', 'c', '--no-write', '--prep-only', dir], { stdio: 'ignore' });
const lua = readFileSync(join(dir, 'track.lua'), 'latin1');
rmSync(dir, { recursive: true, force: true });
const queries = [...lua.matchAll(/"(\/track\?[^"]*)"/g)].map((m) => Buffer.from(m[1].replace(/\\(\d+)/g, (_, d) => String.fromCharCode(Number(d))), 'latin1').toString('utf8').slice(7));
const limits = { maxParams: 1000, maxDepth: 32 };

function time(name, n, fn) {
  for (let i = 0; i < n / 10; i++) fn(i);
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const t = process.cpuUsage(t0);
  console.log(`${name.padEnd(44)} ${(((t.user + t.system) / n) * 1000).toFixed(0).padStart(6)} ns per call`);
}
const N = 300_000;
let sink = 0;
time('parseValues (query.ts)', N, (i) => { sink += parseValues(queries[i % queries.length], limits).length; });
const jsons = queries.map((q) => parseValues(q, limits));
time('JSON.parse of a Line (cost of validation)', N, (i) => { sink += Object.keys(JSON.parse(jsons[i % jsons.length].toString())).length; });
const f = makeFlavor({ name: 'gr', hosts: ['www.example.gr'], timeZone: 'Europe/Athens', topic: 'gr' }, null);
const lookup = flavorLookup([f]);
time('flavor lookup', N, () => { sink += lookup('www.example.gr') === f ? 1 : 0; });
time('flavor.day(now)', N, () => { sink += f.day(Date.now()).length; });
// What the file backend's Writer.encode does per batch.
const big = Buffer.allocUnsafeSlow(1 << 20);
time('Lines copied into a reused write buffer, batches of 200', N / 200, (i) => {
  let off = 0;
  for (let k = 0; k < 200; k++) {
    const line = jsons[(i + k) % jsons.length];
    big.set(line, off);
    off += line.length;
    big[off++] = 10;
  }
  sink += off;
});
console.log('(the last figure is per batch of 200 Lines)', sink > 0 ? '' : '');
console.log(`query bytes: ${Math.round(queries.reduce((s, q) => s + q.length, 0) / queries.length)}, Line bytes: ${Math.round(jsons.reduce((s, j) => s + j.length, 0) / jsons.length)}`);
