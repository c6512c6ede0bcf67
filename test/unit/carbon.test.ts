// Carbon's plaintext protocol from the /stats object: one line per number,
// /stats' own keys as the path, a key that is not a Graphite node made one.
import t from 'tap';
import { carbonLines, carbonNode } from '../../src/stats/carbon.js';

t.test('one line per number, keys joined with dots, the time in seconds', async (t) => {
  const text = carbonLines({
    requests: { GET: { 200: 7, 400: 1 } },
    backends: { file: { persisted: 7, up: 0.5 } },
    file: { flavors: { 'shop.gr': { dropped: 2 }, 'a b/c': { late: 1 } } },
    health: 'ok', draining: false, nothing: null, list: [1, 2], inf: Infinity,
  }, 'scratchd.t', 1765000000);
  t.equal(text, [
    'scratchd.t.requests.GET.200 7 1765000000',
    'scratchd.t.requests.GET.400 1 1765000000',
    'scratchd.t.backends.file.persisted 7 1765000000',
    'scratchd.t.backends.file.up 0.5 1765000000',
    'scratchd.t.file.flavors.shop_gr.dropped 2 1765000000',
    'scratchd.t.file.flavors.a_b_c.late 1 1765000000',
    'scratchd.t.draining 0 1765000000',
    '',
  ].join('\n'));
});

t.test('a node holds only [A-Za-z0-9_-]', async (t) => {
  t.equal(carbonNode('shop.gr'), 'shop_gr');
  t.equal(carbonNode('queue_full'), 'queue_full');
  t.equal(carbonNode('tr-ist'), 'tr-ist');
  t.equal(carbonNode('é x'), '__x');
});

t.test('two flavors that would be one Graphite node are refused when stats.graphite is on', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { ConfigError, loadConfig } = await import('../../src/config.js');
  const dir = mkdtempSync(join(tmpdir(), 'carbon-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const flavors = [
    { name: 'shop.gr', hosts: ['a.test'], timeZone: 'Europe/Athens' },
    { name: 'shop_gr', hosts: ['b.test'], timeZone: 'Europe/Athens' },
  ];
  const file = (stats: object): string => {
    const p = join(dir, `c${Math.random()}.json`);
    writeFileSync(p, JSON.stringify({ stats, flavors, stateDir: dir, backends: { file: { dir } } }));
    return p;
  };
  let refused: unknown = null;
  try {
    loadConfig(file({ graphite: { host: '127.0.0.1', port: 2003 } }));
  } catch (e) {
    refused = e;
  }
  t.ok(refused instanceof ConfigError, 'a config error');
  t.match((refused as Error).message, /"shop_gr" and "shop\.gr" are one Graphite node \(shop_gr\)/);
  t.doesNotThrow(() => loadConfig(file({})), 'without Graphite both names are fine');
});
