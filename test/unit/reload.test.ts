// What a reload applies and what it leaves for a restart, decided from two configs.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig, type Config } from '../../src/config.js';
import { keepUnchanged, needsRestart } from '../../src/reload.js';

const dir = mkdtempSync(join(tmpdir(), 'scratchd-reload-unit-'));
let n = 0;
const flavors = [
  { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' },
  { name: 'tr', hosts: ['tr.test'], timeZone: 'Europe/Istanbul', schema: { type: 'object' } },
];
/** A config through the real loader (defaults applied, flavors resolved). */
function config(over: Record<string, unknown> = {}): Config {
  const file = join(dir, `c${n++}.json`);
  writeFileSync(file, JSON.stringify({ flavors, ...over }));
  return loadConfig(file);
}

t.test('live keys never need a restart', async (t) => {
  t.same(needsRestart(config(), config({
    flavors: [{ name: 'fr', hosts: ['fr.test'], timeZone: 'Europe/Paris' }],
    limits: { maxParams: 10, maxQueryBytes: 100 }, trustedProxies: ['10.0.0.1'],
    log: { level: 'debug' }, shutdown: { graceMs: 10 },
  })), []);
});

t.test('listeners and backends do, named by their sub-key', async (t) => {
  t.same(needsRestart(config(), config({ listen: '127.0.0.1:1', stats: { listen: '127.0.0.1:2' } })), ['listen', 'stats.listen']);
  t.same(needsRestart(config(), config({ backends: { kafka: { enabled: true } } })), ['backends.kafka']);
  t.same(needsRestart(config(), config({ limits: { maxQueryBytes: 9000 } })), ['limits.maxQueryBytes (raised)'],
    'a raised maxQueryBytes: uWS sized its head limit at start-up');
});

t.test('unchanged flavors keep their object, changed ones are new', async (t) => {
  const running = config().flavors;
  const next = keepUnchanged(running, config({
    flavors: [flavors[0], { ...flavors[1], schema: { type: 'object', required: ['x'] } }, { name: 'fr', hosts: ['fr.test'], timeZone: 'UTC' }],
  }).flavors);
  t.equal(next[0], running[0], 'gr: the same object');
  t.not(next[1], running[1], 'tr: its schema changed');
  t.equal(next[1]!.validate!({}), false, 'and the new schema is the one in force');
  t.equal(next[2]!.name, 'fr');
  t.equal(keepUnchanged(running, config().flavors)[1], running[1], 'an unchanged schema is recognised');
});
