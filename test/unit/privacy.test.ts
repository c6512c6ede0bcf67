// The privacy rules as pure functions: the masking table (property-tested
// against a second implementation written from the rules, over 128-bit
// integers), salts kept across a restart and destroyed after two days, visitor
// ids, members stripped from a Line byte for byte, bots and prefetches by real
// headers, and the GPC/DNT verdicts.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import t, { type Test } from 'tap';
import { maskIp } from '../../src/privacy/ip.js';
import type { BotsConfig, MaskBytes, PrivacyConfig } from '../../src/privacy/config.js';
import { Salts } from '../../src/privacy/salts.js';
import { DayHasher, visitorText } from '../../src/privacy/visitor.js';
import { withoutMembers } from '../../src/privacy/strip.js';
import { isBot, isPrefetch } from '../../src/privacy/bots.js';
import { judge, PrivacyState, type HitHeaders } from '../../src/privacy/policy.js';
import { keepSalts } from '../../src/privacy/keeper.js';
import type { Flavor } from '../../src/flavor.js';
import { parseValues } from '../../src/query/index.js';

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'privacy-unit-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** The rule, written again: keep the first 32-8n bits of IPv4, the first 64/48/24/0 bits of IPv6. */
function reference(ip: string, bytes: MaskBytes): string {
  const addr = ipaddr.parse(ip);
  const octets = addr.toByteArray();
  const width = octets.length * 8;
  const keep = octets.length === 4 ? 32 - 8 * bytes : ({ 1: 64, 2: 48, 3: 24, 4: 0 } as const)[bytes];
  let n = 0n;
  for (const o of octets) n = (n << 8n) | BigInt(o);
  const mask = keep === 0 ? 0n : ((1n << BigInt(keep)) - 1n) << BigInt(width - keep);
  n &= mask;
  const out: number[] = [];
  for (let i = octets.length - 1; i >= 0; i--) out[i] = Number((n >> BigInt(8 * (octets.length - 1 - i))) & 0xffn);
  return ipaddr.fromByteArray(out).toString().includes(':') ? (ipaddr.fromByteArray(out) as ipaddr.IPv6).toRFC5952String() : ipaddr.fromByteArray(out).toString();
}

t.test('the masking table', async (t) => {
  t.equal(maskIp('192.0.2.137', 1), '192.0.2.0');
  t.equal(maskIp('192.0.2.137', 2), '192.0.0.0');
  t.equal(maskIp('192.0.2.137', 3), '192.0.0.0');
  t.equal(maskIp('198.51.100.7', 3), '198.0.0.0');
  t.equal(maskIp('198.51.100.7', 4), '0.0.0.0');
  t.equal(maskIp('2001:db8:85a3:1234:8a2e:370:7334:1', 1), '2001:db8:85a3:1234::');
  t.equal(maskIp('2001:db8:85a3:1234:8a2e:370:7334:1', 2), '2001:db8:85a3::');
  t.equal(maskIp('2001:db8:85a3:1234:8a2e:370:7334:1', 3), '2001:d00::');
  t.equal(maskIp('2001:db8:85a3:1234:8a2e:370:7334:1', 4), '::');
  t.equal(maskIp('::ffff:203.0.113.9', 2), '203.0.0.0', 'an IPv4-mapped address is masked as IPv4');
  t.equal(maskIp('not an address', 2), '', 'no address: nothing written');
});

t.test('masking agrees with the rule on every address (property)', async (t) => {
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
  const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((p) => new ipaddr.IPv6(p).toRFC5952String());
  fc.assert(fc.property(fc.oneof(v4, v6), fc.constantFrom<MaskBytes>(1, 2, 3, 4), (ip, bytes) => maskIp(ip, bytes) === reference(ip, bytes)),
    { numRuns: 2000 });
  t.pass('2000 addresses');
});

t.test('salts: one per flavor day, kept across a restart, destroyed two days old', async (t) => {
  const d = dir(t);
  const a = new Salts(d);
  const s1 = a.salt('gr', '2026-12-06');
  t.equal(s1.length, 32);
  t.same(a.salt('gr', '2026-12-06'), s1, 'stable within the day');
  t.notSame(a.salt('gr', '2026-12-07'), s1, 'another the next day');
  t.notSame(a.salt('tr', '2026-12-06'), s1, 'another for another flavor');
  t.equal(statSync(join(d, 'gr', '2026-12-06')).mode & 0o777, 0o600);
  t.equal(statSync(join(d, 'gr')).mode & 0o777, 0o700);
  const restarted = new Salts(d);
  t.same(restarted.salt('gr', '2026-12-06'), s1, 'a restart keeps the day\'s salt');

  restarted.prepare('gr', '2026-12-07', '2026-12-08', '2026-12-06');
  t.same(readdirSync(join(d, 'gr')).sort(), ['2026-12-06', '2026-12-07', '2026-12-08'], 'yesterday kept, tomorrow made');
  restarted.prepare('gr', '2026-12-08', '2026-12-09', '2026-12-07');
  t.same(readdirSync(join(d, 'gr')).sort(), ['2026-12-07', '2026-12-08', '2026-12-09'], 'two days old: gone');
  t.notSame(restarted.salt('gr', '2026-12-06'), s1, 'and gone from RAM: the old ids cannot be made again');
});

t.test('visitor ids: 16 hex digits, stable per day, apart across days and flavors', async (t) => {
  const h = new DayHasher();
  const salt = Buffer.alloc(32, 1);
  const id = h.hash('2026-12-06', salt, visitorText('192.0.2.1', 'UA', 'gr'));
  t.match(id, /^[0-9a-f]{16}$/);
  t.equal(new DayHasher().hash('2026-12-06', salt, visitorText('192.0.2.1', 'UA', 'gr')), id, 'the same inputs, the same id');
  t.not(h.hash('2026-12-07', Buffer.alloc(32, 2), visitorText('192.0.2.1', 'UA', 'gr')), id, 'another salt, another id');
  t.not(h.hash('2026-12-06', salt, visitorText('192.0.2.1', 'UA', 'tr')), id);
  t.not(h.hash('2026-12-06', salt, visitorText('192.0.2.1U', 'A', 'gr')), id, 'parts cannot run together');
});

t.test('withoutMembers removes top-level members, keeping the converter\'s bytes', async (t) => {
  const json = parseValues('a=1&uid=42&b[c]=%3C%2F%E2%80%A8&_id=x&d[]=1&d[]=2&cid[x]=y&e=%22q%22', { maxParams: 100, maxDepth: 32 }) as Buffer;
  const out = withoutMembers(json, new Set(['uid', '_id', 'cid']));
  const expected = parseValues('a=1&b[c]=%3C%2F%E2%80%A8&d[]=1&d[]=2&e=%22q%22', { maxParams: 100, maxDepth: 32 }) as Buffer;
  t.equal(out.toString(), expected.toString());
  t.equal(withoutMembers(Buffer.from('{}'), new Set(['a'])).toString(), '{}');
  t.equal(withoutMembers(Buffer.from('{"a":"1"}'), new Set(['a'])).toString(), '{}');
  t.equal(withoutMembers(Buffer.from('{"a":"1","b":{"c":["}"]}}'), new Set(['a'])).toString(), '{"b":{"c":["}"]}}');
});

t.test('bots and prefetches by real headers', async (t) => {
  const bots = [
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36',
    'curl/8.5.0',
    'python-requests/2.31.0',
  ];
  const people = [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  ];
  for (const ua of bots) t.ok(isBot(ua), ua);
  for (const ua of people) t.notOk(isBot(ua), ua);
  t.ok(isBot(bots[0]!), 'remembered verdicts stay right');
  t.ok(isPrefetch('prefetch', '', '', ''));
  t.ok(isPrefetch('prefetch;prerender', '', '', ''));
  t.ok(isPrefetch('', 'prefetch', '', ''));
  t.ok(isPrefetch('', '', 'preview', ''));
  t.ok(isPrefetch('', '', '', 'prefetch'));
  t.notOk(isPrefetch('', '', '', ''));
});

const headers = (h: Partial<HitHeaders> = {}): HitHeaders => ({
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0', referer: 'https://gr.test/',
  secGpc: '', dnt: '', secPurpose: '', purpose: '', xPurpose: '', xMoz: '', ...h,
});
const privacy = (p: Partial<PrivacyConfig> = {}): PrivacyConfig => ({
  ip: 'full', maskBytes: 2, gpc: 'ignore', dnt: 'ignore', identifiers: ['uid', '_id'], ...p,
});
const botsRule = (b: Partial<BotsConfig> = {}): BotsConfig => ({ action: 'keep', field: 'bot', emptyUserAgent: 'human', ...b });
const enrich = { ip: 'ip', userAgent: 'ua', referer: 'ref' };

t.test('GPC and DNT: ignore, anonymize, drop; the strictest wins; each counted', async (t) => {
  const state = new PrivacyState(new Salts(dir(t)));
  const rules = (p: PrivacyConfig) => ({ enrich, privacy: p, bots: null, identifiers: new Set(p.identifiers) });
  const judgeOf = (p: PrivacyConfig, h: Partial<HitHeaders>) => {
    const v = judge('gr', 'Europe/Athens', '2026-12-06', rules(p), state, headers(h), '192.0.2.137', 0);
    state.count('gr', v);
    return v;
  };

  t.same(judgeOf(privacy(), { secGpc: '1' }).pairs, ['ip', '192.0.2.137', 'ua', headers().userAgent, 'ref', 'https://gr.test/'], 'ignore: as received');
  const anon = judgeOf(privacy({ gpc: 'anonymize', field: 'privacy', visitorId: 'vid' }), { secGpc: '1' });
  t.same(anon.pairs, ['ref', 'https://gr.test/', 'privacy', 'anonymize'], 'anonymize: no IP, no User-Agent, no visitor id');
  t.same([...anon.strip!], ['uid', '_id']);
  t.same(judgeOf(privacy({ dnt: 'drop' }), { dnt: '1' }), { skip: 'dnt', signal: 'dnt/drop', bot: null });
  t.same(judgeOf(privacy({ gpc: 'anonymize', dnt: 'drop' }), { secGpc: '1', dnt: '1' }), { skip: 'dnt', signal: 'dnt/drop', bot: null }, 'the strictest action wins');
  t.same(judgeOf(privacy({ gpc: 'drop' }), { secGpc: '0' }).skip, null, 'Sec-GPC: 0 is no signal');
  const c = state.countersOf('gr');
  t.same(Object.fromEntries(c.signals), { 'gpc/anonymize': 1, 'dnt/drop': 2 });
});

t.test('privacy.ip and the visitor id', async (t) => {
  const state = new PrivacyState(new Salts(dir(t)));
  const pairsOf = (p: PrivacyConfig, ip: string, day = '2026-12-06') =>
    judge('gr', 'Europe/Athens', day, { enrich: { ip: 'ip' }, privacy: p, bots: null, identifiers: new Set() }, state, headers(), ip, 0).pairs!;
  t.same(pairsOf(privacy({ ip: 'masked' }), '192.0.2.137'), ['ip', '192.0.0.0']);
  t.same(pairsOf(privacy({ ip: 'masked', maskBytes: 1 }), '2001:db8::1'), ['ip', '2001:db8::']);
  t.same(pairsOf(privacy({ ip: 'none' }), '192.0.2.137'), []);
  const [, hashed] = pairsOf(privacy({ ip: 'hashed' }), '192.0.2.137');
  t.match(hashed, /^[0-9a-f]{16}$/);
  t.not(pairsOf(privacy({ ip: 'hashed' }), '192.0.2.137', '2026-12-07')[1], hashed, 'another day, another hash');
  const vid = pairsOf(privacy({ ip: 'none', visitorId: 'vid' }), '192.0.2.137');
  t.equal(vid[0], 'vid');
  t.same(pairsOf(privacy({ ip: 'none', visitorId: 'vid' }), '192.0.2.137'), vid, 'stable within the day');
  t.not(pairsOf(privacy({ ip: 'none', visitorId: 'vid' }), '192.0.2.138')[1], vid[1]);
  t.not(vid[1], hashed, 'a visitor id is not the hashed IP');
});

t.test('bots: keep, tag, drop; prefetches never recorded; empty User-Agent as the flavor says', async (t) => {
  const state = new PrivacyState(null);
  const googlebot = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
  const judgeOf = (b: BotsConfig, h: Partial<HitHeaders>) => {
    const v = judge('uk', 'Europe/London', '2026-12-06', { enrich: null, privacy: null, bots: b, identifiers: new Set() }, state, headers(h), '192.0.2.1', 0);
    state.count('uk', v);
    return v;
  };
  t.same(judgeOf(botsRule(), { userAgent: googlebot }).pairs, []);
  t.same(judgeOf(botsRule({ action: 'tag' }), { userAgent: googlebot }).pairs, ['bot', 'true']);
  t.same(judgeOf(botsRule({ action: 'tag', field: 'crawler' }), { userAgent: googlebot }).pairs, ['crawler', 'true']);
  t.same(judgeOf(botsRule({ action: 'tag' }), {}).pairs, [], 'a browser is not tagged');
  t.same(judgeOf(botsRule({ action: 'drop' }), { userAgent: googlebot }), { skip: 'bot', signal: null, bot: 'drop' });
  t.same(judgeOf(botsRule({ action: 'drop' }), { userAgent: '' }).skip, null, 'empty User-Agent: human by default');
  t.same(judgeOf(botsRule({ action: 'drop', emptyUserAgent: 'bot' }), { userAgent: '' }), { skip: 'bot', signal: null, bot: 'drop' });
  t.same(judgeOf(botsRule(), { secPurpose: 'prefetch' }), { skip: 'prefetch', signal: null, bot: null });
  const c = state.countersOf('uk');
  t.same(Object.fromEntries(c.bots), { keep: 1, tag: 2, drop: 2 });
  t.equal(c.prefetch, 1);
});

// The keeper destroys a salt once its day is two days old in the flavor's
// zone, also after a reload removed the flavor: a removed flavor in a zone far
// ahead of UTC (Kiritimati, UTC+14) must not keep its salts for the day more
// that the last zone (UTC-12) needs to catch up.
t.test('the keeper: salts of a removed flavor destroyed two days old in its own zone', async (t) => {
  const saltDir = dir(t);
  const salts = new Salts(saltDir);
  const kiritimati = { name: 'ki', timeZone: 'Pacific/Kiritimati', privacy: privacy({ visitorId: 'vid' }) } as unknown as Flavor;
  let flavors: Flavor[] = [kiritimati];
  let now = Date.parse('2026-12-06T00:00:00Z'); // 14:00 on the 6th in Kiritimati
  const keeper = keepSalts(salts, () => flavors, () => now);
  t.teardown(() => keeper.stop());
  const onDisk = (): string[] => readdirSync(join(saltDir, 'ki')).sort();
  t.same(onDisk(), ['2026-12-06', '2026-12-07']);
  flavors = []; // a reload removed it
  now = Date.parse('2026-12-07T11:00:00Z'); // 01:00 on the 8th in Kiritimati, still the 6th in UTC-12
  await new Promise((r) => setImmediate(r));
  salts.onMiss(); // the keeper's next pass, brought forward
  await new Promise((r) => setImmediate(r));
  t.same(onDisk(), ['2026-12-07'], 'the 6th is two days old in Kiritimati: gone');
});
