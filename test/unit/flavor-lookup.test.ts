// Host → flavor (#30 hostile 6): the cache of Host header values seen must
// stay small whatever Hosts clients send, while every one still resolves.
import t from 'tap';
import { flavorLookup, makeFlavor, type Flavor } from '../../src/flavor.js';

const gr = makeFlavor({ name: 'gr', hosts: ['gr.test', 'WWW.gr.test'], timeZone: 'Europe/Athens', topic: 'gr' }, null);
const uk = makeFlavor({ name: 'uk', hosts: ['uk.test'], timeZone: 'Europe/London', topic: 'uk' }, null);

t.test('1,100 distinct 16 KB Host headers of a known host resolve, and the cache keeps none of them', async (t) => {
  const cache = new Map<string, Flavor>();
  const lookup = flavorLookup([gr, uk], cache);
  for (let i = 0; i < 1100; i++) {
    const host = `gr.test:${String(i).padStart(16_000, '0')}`;
    if (lookup(host) !== gr) t.fail(`host ${i} did not resolve to gr`);
  }
  t.equal(lookup('UK.test:8080'), uk);
  t.equal(lookup('www.gr.test'), gr);
  const kept = [...cache.keys()].reduce((n, k) => n + k.length, 0);
  t.ok(kept <= 1024 * 260, `the cache holds ${kept} characters of Host headers (at most 1024 × 260)`);
  t.same([...cache.keys()], ['UK.test:8080', 'www.gr.test'], 'ordinary Host headers are remembered');
});

t.test('unknown Hosts are not remembered', async (t) => {
  const cache = new Map<string, Flavor>();
  const lookup = flavorLookup([gr], cache);
  let found = 0;
  for (let i = 0; i < 2000; i++) if (lookup(`scan${i}.example`) !== undefined) found++;
  t.equal(found, 0);
  t.equal(cache.size, 0);
});
