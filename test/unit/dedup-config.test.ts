// flavors[].dedup in the config: defaults applied, off when absent, and
// every malformed setting refused with its path.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';

const dir = t.testdir();
let n = 0;
function load(dedup: unknown): ReturnType<typeof loadConfig> {
  const file = join(dir, `c${n++}.json`);
  const flavor = { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens', ...(dedup === undefined ? {} : { dedup }) };
  writeFileSync(file, JSON.stringify({ flavors: [flavor] }));
  return loadConfig(file);
}
function errors(dedup: unknown): string[] {
  try {
    load(dedup);
    return [];
  } catch (err) {
    return (err as ConfigError).errors;
  }
}

t.test('off by default; defaults applied', async (t) => {
  t.equal(load(undefined).flavors[0]!.dedup, null);
  t.same(load({ key: ['pv_id', 'r'] }).flavors[0]!.dedup, { key: ['pv_id', 'r'], windowMs: 60_000, maxKeys: 2_097_152 });
  t.same(load({ key: ['ip', 'userAgent', 'body', 'query', 'event id'], windowMs: 5000, maxKeys: 10 }).flavors[0]!.dedup,
    { key: ['ip', 'userAgent', 'body', 'query', 'event id'], windowMs: 5000, maxKeys: 10 });
});

t.test('malformed settings are refused with their path', async (t) => {
  t.match(errors({}), [/\/flavors\/0\/dedup: must have required property 'key'/]);
  t.match(errors({ key: [] }), [/\/flavors\/0\/dedup\/key: must NOT have fewer than 1 items/]);
  t.match(errors({ key: ['r', 'r'] }), [/\/flavors\/0\/dedup\/key: must NOT have duplicate items/]);
  t.match(errors({ key: [''] }), [/\/flavors\/0\/dedup\/key\/0/]);
  t.match(errors({ key: ['r'], windowMs: 0 }), [/\/flavors\/0\/dedup\/windowMs: must be >= 1/]);
  t.match(errors({ key: ['r'], maxKeys: 33554433 }), [/\/flavors\/0\/dedup\/maxKeys: must be <= 33554432/]);
  t.match(errors({ key: ['r'], ttl: 5 }), [/\/flavors\/0\/dedup: unknown key "ttl"/]);
});
