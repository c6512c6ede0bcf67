// The built daemon validates its config with the validator `npm run build`
// generated (dist/config-validator.cjs) and never loads ajv's compiler unless
// a flavor brings its own schema; a validator generated from another schema
// text is not used. Same errors either way.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { mainJs, root, tempDir } from '../helpers/daemon.js';

const flavor = { name: 'gr', hosts: ['gr.test'], timeZone: 'Europe/Athens' };

function configFile(config: unknown): string {
  const file = join(tempDir(), 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/** Reports at exit whether ajv's compiler (ajv/dist/core.js) was ever loaded. */
function preload(): string {
  const file = join(tempDir(), 'ajv-loaded.mjs');
  writeFileSync(file, `import { createRequire } from 'node:module';
const cache = createRequire(${JSON.stringify(file)}).cache;
process.on('exit', () => process.stderr.write('ajv compiler loaded: ' + Object.keys(cache).some((k) => /node_modules[\\\\/]ajv[\\\\/]dist[\\\\/]core\\.js$/.test(k)) + '\\n'));
`);
  return file;
}

function check(main: string, config: string) {
  const r = spawnSync(process.execPath, ['--import', preload(), main, '--config', config, '--check'], { encoding: 'utf8', timeout: 20_000 });
  const ajv = /ajv compiler loaded: (true|false)/.exec(r.stderr)?.[1];
  return { code: r.status, stdout: r.stdout, errors: r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('ajv compiler loaded')), ajv };
}

t.test('npm run build generated the validator', async (t) => {
  t.ok(existsSync(join(root, 'dist/config-validator.cjs')), 'dist/config-validator.cjs exists');
});

t.test('a valid config is checked without loading ajv\'s compiler', async (t) => {
  const r = check(mainJs, configFile({ flavors: [flavor] }));
  t.equal(r.code, 0);
  t.equal(r.ajv, 'false');
});

t.test('a flavor with its own schema loads ajv to compile it', async (t) => {
  const r = check(mainJs, configFile({ flavors: [{ ...flavor, schema: { type: 'object', required: ['idsite'] } }] }));
  t.equal(r.code, 0);
  t.equal(r.ajv, 'true');
});

t.test('the generated validator gives the same errors and defaults as ajv compiling the schema', async (t) => {
  const bad = {
    listen: 'nowhere', colour: 'blue', limits: { maxParams: 0, maxDepth: 1000 }, log: { level: 'loud' },
    flavors: [{ ...flavor, name: '../etc', hosts: [] }, { ...flavor, name: 'tr', extra: 1 }],
    backends: { file: { queueCapacity: -1, extra: true }, kafka: { key: 3 } },
  };
  const file = configFile(bad);
  const built = check(mainJs, file);
  t.equal(built.code, 1);
  t.equal(built.ajv, 'false');
  // From src/ there is no generated validator: ajv compiles the schema.
  let expected: string[] = [];
  try {
    loadConfig(file);
  } catch (err) {
    expected = (err as ConfigError).errors.map((e) => `${file}: ${e}`);
  }
  t.ok(expected.length >= 8, 'the bad config has many errors');
  t.same(built.errors.slice(0, -1).sort(), expected.sort());
  // Defaults come from the same schema.
  const ok = configFile({ flavors: [flavor] });
  const fromSrc = loadConfig(ok);
  t.equal(fromSrc.limits.maxQueryBytes, 8192);
  t.equal(check(mainJs, ok).code, 0);
});

t.test('a validator generated from another schema text is not used', async (t) => {
  // A copy of the build whose schema differs from the one the validator was made from.
  const copy = tempDir();
  cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  const schema = JSON.parse(readFileSync(join(root, 'config.schema.json'), 'utf8'));
  schema.properties.limits.properties.maxParams.maximum = 10;
  writeFileSync(join(copy, 'config.schema.json'), JSON.stringify(schema, null, 2));
  const r = check(join(copy, 'dist/main.js'), configFile({ limits: { maxParams: 11 }, flavors: [flavor] }));
  t.equal(r.code, 1);
  t.equal(r.ajv, 'true', 'compiled by ajv from the schema on disk');
  t.match(r.errors.join('\n'), /\/limits\/maxParams: must be <= 10/);
});
