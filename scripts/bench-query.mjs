#!/usr/bin/env node
// Micro-benchmark of src/query/ (compiled: run `npx tsc -p .` first):
//   node scripts/bench-query.mjs [iterations]
// Prints ns/op of parseValues() against the naive (and not Rack-compatible)
// JSON.stringify(Object.fromEntries(new URLSearchParams(q))) for a few queries,
// the first being a realistic ~300-byte Matomo-style tracker hit.
import { parseValues, rackLimits } from '../dist/query/index.js';

const N = Number(process.argv[2] ?? 1_000_000);

const queries = {
  'matomo (realistic, ~300 B)':
    'idsite=1&rec=1&r=482917&h=14&m=3&s=7&url=https%3A%2F%2Fwww.example.gr%2Fnews%2F2024%2F05%2Farticle-title%3Futm_source%3Dnewsletter' +
    '&urlref=https%3A%2F%2Fwww.google.com%2F&_id=4f3c2b1a0d9e8f7a&_idn=0&send_image=1&res=1920x1080' +
    '&action_name=Example%20News%20-%20Article%20title&pv_id=Ab3dE6&gt_ms=120&pdf=1&cookie=1',
  'ga4 (~400 B, 37 params)':
    'v=2&tid=G-ABCDEF1234&gtm=45je4510v9119&_p=1700000000000&gcd=13l3l3l3l1&npa=0&dma=0&cid=1234567890.1700000000&ul=tr-tr' +
    '&sr=1920x1080&uaa=x86&uab=64&uafvl=Chromium%3B124.0.6367.91%7CGoogle%2520Chrome%3B124.0.6367.91&uamb=0&uam=&uap=Windows' +
    '&uapv=15.0.0&uaw=0&are=1&pae=1&frm=0&pscdl=noapi&_s=1&sid=1700000000&sct=1&seg=0&dl=https%3A%2F%2Fwww.example.com.tr%2F' +
    '&dt=Ana%20Sayfa&en=page_view&_fv=1&_nsi=1&_ss=1&tfd=512',
  'greek text (%-encoded UTF-8)':
    'idsite=1&rec=1&action_name=%CE%95%CE%B9%CE%B4%CE%AE%CF%83%CE%B5%CE%B9%CF%82%20-%20%CE%91%CE%B8%CE%AE%CE%BD%CE%B1&url=https%3A%2F%2Fwww.example.gr%2F',
  'foo=bar': 'foo=bar',
  'nested (general path)': 'ev=click&el[id]=buy&el[classes][]=btn&el[classes][]=primary&pos[x]=10&pos[y]=20',
};

const naive = (q) => JSON.stringify(Object.fromEntries(new URLSearchParams(q)));
const ours = (q) => {
  const r = parseValues(q, rackLimits);
  return 'reason' in r ? r.reason : r;
};

function bench(fn, q, n) {
  let sink = 0;
  for (let i = 0; i < Math.min(n, 200_000); i++) sink += fn(q).length; // warm-up
  // CPU time, not wall time: build machines are shared, and a preempted loop
  // would otherwise count other processes' time.
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) sink += fn(q).length;
  const c = process.cpuUsage(c0);
  if (sink === 42) console.log('');
  return ((c.user + c.system) * 1000) / n;
}

console.log(`node ${process.version}, ${N} iterations each, CPU time per op`);
for (const [name, q] of Object.entries(queries)) {
  const a = bench(ours, q, N);
  const b = bench(naive, q, N);
  console.log(`${name.padEnd(30)} ${String(q.length).padStart(4)} B  parseValues ${a.toFixed(0).padStart(6)} ns/op` +
    `   naive URLSearchParams ${b.toFixed(0).padStart(6)} ns/op   (${(b / a).toFixed(2)}x)`);
}
