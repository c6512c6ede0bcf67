#!/usr/bin/env node
// What each of scratchd's modules costs in memory at start: for each, N fresh
// node processes (the flags scratchd runs with) measure their RSS, load the
// module the way scratchd uses it, and measure again; the table shows the
// median RSS delta. RSS is counted in pages actually touched, so unlike
// timings it hardly moves when other work shares the cores.
//   node bench/module-rss.mjs [repetitions]     (inside the chroot)
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reps = Number(process.argv[2] ?? 7);
const flags = ['--max-semi-space-size=4', '--expose-gc'];

// Each probe runs after the baseline reading; the module is used as scratchd
// uses it, since much of the cost comes at first use, not at import.
const probes = {
  'nothing (node alone, baseline noise)': '',
  'uWebSockets.js (import + App())': "const { default: uWS } = await import('uWebSockets.js'); globalThis.keep = uWS.App();",
  'pino (import + logger + one line)': "const { pino } = await import('pino'); const l = pino({ base: null }, { write() {} }); l.info('x'); globalThis.keep = l;",
  'ajv (import + compile config.schema.json)': "const { Ajv } = await import('ajv'); const fs = await import('node:fs'); const a = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }); globalThis.keep = a.compile(JSON.parse(fs.readFileSync('config.schema.json','utf8')));",
  'ajv, compiled then dropped': "await (async () => { const { Ajv } = await import('ajv'); const fs = await import('node:fs'); const a = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }); a.compile(JSON.parse(fs.readFileSync('config.schema.json','utf8'))); })();",
  'ajv in a worker thread that exits (main thread never loads it)': "const { Worker } = await import('node:worker_threads'); await new Promise((res, rej) => { const w = new Worker(\"const { Ajv } = await import('ajv'); const fs = await import('node:fs'); new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }).compile(JSON.parse(fs.readFileSync('config.schema.json','utf8')));\", { eval: true }); w.on('exit', res); w.on('error', rej); });",
  'ajv (import + compile config.schema.json) + a second instance for flavor schemas, nothing compiled in it': "const { Ajv } = await import('ajv'); const fs = await import('node:fs'); const a = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }); globalThis.keep = [a.compile(JSON.parse(fs.readFileSync('config.schema.json','utf8'))), new Ajv({ allErrors: true, strict: false })];",
  'prom-client (import only)': "globalThis.keep = await import('prom-client');",
  'prom-client (import + Registry + default metrics + one scrape)': "const p = await import('prom-client'); const r = new p.Registry(); p.collectDefaultMetrics({ register: r }); await r.metrics(); globalThis.keep = r;",
  'node-rdkafka (import only)': "globalThis.keep = (await import('node-rdkafka')).default;",
  'Intl.DateTimeFormat with a time zone (day files)': "globalThis.keep = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Athens', year: 'numeric', month: '2-digit', day: '2-digit' }).format(Date.now());",
};

// warm: first grow the young generation to its maximum with short-lived
// garbage, as load does; otherwise a module's allocations at import are
// partly charged with the semi-spaces' growth, which load causes anyway.
const script = (body, warm) => `
const rss = () => { globalThis.gc(); return process.memoryUsage().rss; };
${warm ? 'for (let i = 0; i < 3e6; i++) globalThis.junk = { i, a: [i, i] }; globalThis.junk = null;' : ''}
await new Promise((r) => setTimeout(r, 50));
const before = rss();
${body}
await new Promise((r) => setTimeout(r, 50));
process.stdout.write(JSON.stringify({ before, after: rss() }));
`;

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const MB = (b) => (b / 2 ** 20).toFixed(1);
console.log(`| module (how it is used) | RSS delta MB, cold start | min–max | RSS delta MB, young generation grown first | min–max |`);
console.log('|---|--:|--:|--:|--:|');
const baseline = [];
// SCRATCHD_MODULE_RSS_ONLY=regex: only the probes whose name matches.
const only = process.env.SCRATCHD_MODULE_RSS_ONLY ? new RegExp(process.env.SCRATCHD_MODULE_RSS_ONLY) : null;
for (const [name, body] of Object.entries(probes).filter(([n]) => only === null || n === 'nothing (node alone, baseline noise)' || only.test(n))) {
  const cells = [];
  for (const warm of [false, true]) {
    const deltas = [];
    for (let i = 0; i < reps; i++) {
      const out = JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script(body, warm)], { cwd: root, encoding: 'utf8' }));
      deltas.push(out.after - out.before);
      if (body === '' && !warm) baseline.push(out.before);
    }
    cells.push(MB(median(deltas)), `${MB(Math.min(...deltas))}–${MB(Math.max(...deltas))}`);
  }
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}
console.log(`\n(medians of ${reps} fresh processes each, node ${flags.join(' ')})`);
console.log(`\nnode's own RSS before any module: ${MB(median(baseline))} MB (median)`);
