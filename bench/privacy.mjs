#!/usr/bin/env node
// What a flavor's privacy and bot rules cost per hit (issue 26): `node
// bench/privacy.mjs` (after a build). CPU ns per hit, each pair measured in
// the same run, in alternating rounds, the median; BENCHMARKS.md ("Privacy
// rules") has the figures.
//
// A hit here is what http/hit.ts does for it from the headers on: the Facts
// (fresh strings per hit, as uWS hands them over), then verdictOf: the
// client IP and judge() (privacy/policy.ts). "plain" is the same flavor with
// `enrich` { ip, userAgent } only; "privacy" adds `privacy` { ip: "masked",
// visitorId } and `bots` { action: "tag" }. The difference of the two is the
// rules' cost. Three kinds of traffic: the same few visitors and
// User-Agents again (every cache hit), a new visitor each hit (a known
// User-Agent: the visitor id's HMAC), a new User-Agent each hit (isbot's
// regular expression and the HMAC).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFlavor } from '../dist/flavor.js';
import { clientIp, peerIp } from '../dist/http/client-ip.js';
import { judge, PrivacyState } from '../dist/privacy/policy.js';
import { DEFAULT_IDENTIFIERS } from '../dist/privacy/config.js';
import { Salts } from '../dist/privacy/salts.js';

const N = 1_000_000;
const ROUNDS = 5;
const T0 = Date.parse('2026-12-06T10:00:00Z');
const STEP_MS = 1000 / 70_000;

const stateDir = mkdtempSync(join(tmpdir(), 'scratchd-bench-privacy-'));
process.on('exit', () => rmSync(stateDir, { recursive: true, force: true }));
const state = new PrivacyState(new Salts(join(stateDir, 'salts')));
const trusted = new Set();

const enrich = { ip: 'ip', userAgent: 'ua' };
const base = { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', enrich };
const plainFlavor = makeFlavor(base, null);
const privacyFlavor = makeFlavor({
  ...base,
  privacy: { ip: 'masked', maskBytes: 2, visitorId: 'vid', gpc: 'ignore', dnt: 'ignore', identifiers: DEFAULT_IDENTIFIERS },
  bots: { action: 'tag', field: 'bot', emptyUserAgent: 'human' },
}, null);

const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const UAS = [UA,
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'];
// uWS hands each header over as a new string: made from bytes per hit, in every contender alike.
const uaBytes = UAS.map((u) => Buffer.from(u, 'latin1'));
const ipBytes = Array.from({ length: 64 }, (_, i) => Buffer.from(`85.74.${i}.${(i * 37) % 256}`));

/** The i-th hit's headers: `kind` says which of them repeat. */
function factsOf(kind, i) {
  let peer;
  let userAgent;
  if (kind === 'repeat') {
    peer = ipBytes[i & 63].toString('latin1');
    userAgent = uaBytes[(i >> 6) & 3].toString('latin1');
  } else if (kind === 'new visitor') {
    peer = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    userAgent = uaBytes[0].toString('latin1');
  } else {
    peer = ipBytes[i & 63].toString('latin1');
    userAgent = `${UA} Edg/131.0.${i}.0`;
  }
  return {
    peer: peerIp(peer), forwardedFor: '', secGpc: '', dnt: '', secPurpose: '', purpose: '', xPurpose: '', xMoz: '',
    userAgent, referer: '',
  };
}

let sink = 0;

/** http/hit.ts's verdictOf for `flavor`, on hits of `kind`. */
function hits(flavor, kind) {
  return () => (i, time) => {
    const f = factsOf(kind, i);
    if (flavor.enrich === null && flavor.privacy === null && flavor.bots === null) return;
    const v = judge(flavor.name, flavor.timeZone, flavor.day(time), flavor, state, f, clientIp(f.peer, f.forwardedFor, trusted), time);
    sink += v.pairs.length;
  };
}

/** CPU ns per call of fn over n calls. */
function run(fn, n, from) {
  const t0 = process.cpuUsage();
  for (let i = from; i < from + n; i++) fn(i, T0 + i * STEP_MS);
  const t = process.cpuUsage(t0);
  return ((t.user + t.system) * 1000) / n;
}

/** Each contender warmed, then measured ROUNDS times, alternating; the median. */
function compare(contenders) {
  const fns = contenders.map(([, make]) => make());
  const times = contenders.map(() => []);
  fns.forEach((fn) => run(fn, N / ROUNDS, 0));
  for (let r = 0; r < ROUNDS; r++) {
    // Hits numbered on across rounds: "new" traffic stays new.
    fns.forEach((fn, k) => times[k].push(run(fn, N / ROUNDS, (r + 1) * (N / ROUNDS))));
  }
  return times.map((ts) => ts.sort((a, b) => a - b)[ts.length >> 1]);
}

function report(title, contenders, ns) {
  console.log(title);
  contenders.forEach(([name], k) => {
    const ratios = contenders.map(([other], j) => (j === k ? '' : ` ${(ns[k] / ns[j]).toFixed(2)}x ${other}`)).join('');
    console.log(`  ${name.padEnd(44)} ${ns[k].toFixed(0).padStart(6)} ns/hit${ratios}`);
  });
  if (ns.length === 2) console.log(`  the rules cost ${(ns[1] - ns[0]).toFixed(0)} ns/hit`);
}

for (const kind of ['repeat', 'new visitor', 'new User-Agent']) {
  const pair = [[`plain: enrich { ip, userAgent }`, hits(plainFlavor, kind)],
    [`privacy: ip masked, visitorId, bots tag`, hits(privacyFlavor, kind)]];
  const what = { repeat: 'cache hit: the same 64 visitors and 4 User-Agents again',
    'new visitor': 'miss: a new visitor (IP) each hit, a known User-Agent',
    'new User-Agent': 'miss: a new User-Agent each hit (so a new visitor too)' }[kind];
  report(`\n${what} (${N} hits)`, pair, compare(pair));
}
if (sink < 0) console.log(sink);
