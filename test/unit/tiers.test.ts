// `npm test` runs every test file: each *.test.ts sits in exactly one tier
// (test/unit, test/e2e, test/system), each tier's script runs its folder,
// and `npm test` runs all of them. A test file put anywhere else, or a tier
// left out of `npm test`, fails here instead of silently never running.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';

const root = new URL('../..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};
const tiers = { unit: 'test/unit', e2e: 'test/e2e', system: 'test/system' } as const;

function testFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) return testFiles(path);
    return /\.test\.[cm]?[jt]sx?$/.test(name) ? [path] : [];
  });
}

/** The test paths a script hands to tap. */
const pathsIn = (script: string): string[] => script.split(/\s+/).filter((w) => w.startsWith('test/'));
const under = (file: string, dir: string): boolean => file === dir || file.startsWith(`${dir}/`);

const files = testFiles('test');

t.test('every test file is in exactly one tier', async (t) => {
  t.ok(files.length > 0);
  for (const f of files) {
    const inTiers = Object.values(tiers).filter((d) => under(f, d));
    t.equal(inTiers.length, 1, `${f} is in one of ${Object.values(tiers).join(', ')}`);
  }
});

t.test('each tier script runs its folder', async (t) => {
  for (const [name, dir] of Object.entries(tiers)) {
    const script = pkg.scripts[`test:${name}`];
    t.ok(script !== undefined, `a test:${name} script`);
    t.same(pathsIn(script ?? ''), [dir], `test:${name} runs ${dir}`);
    if (name !== 'unit') t.match(script, /^npm run build && /, `test:${name} builds dist/ first (the daemon runs it)`);
  }
});

t.test('npm test runs every tier, after building and typechecking', async (t) => {
  t.equal(pkg.scripts.test, 'scripts/suite.sh', 'npm test is scripts/suite.sh');
  const script = readFileSync(join(root, 'scripts/suite.sh'), 'utf8');
  const dirs = pathsIn(script).filter((p) => !p.endsWith('.ts'));
  t.same([...new Set(dirs)].sort(), Object.values(tiers).sort(), 'all three tiers');
  t.match(script, /^npm run build \|\| exit 1$/m, 'it builds first');
  t.match(script, /^npm run test:types &$/m, 'it typechecks the tests');
  t.match(script, /^wait \$types \|\| exit 1$/m, 'and stops when they do not typecheck');
  const long = 'test/system/kafka-long-outage.test.ts';
  t.match(script, /^tap "\$long" .*&$/m, 'the long outage runs beside the tiers');
  t.match(script, new RegExp(`^long=${long}$`, 'm'));
  t.match(script, /--exclude="\*\*\/kafka-long-outage\.test\.ts" test\/system/, 'and not twice');
  const covered = files.filter((f) => dirs.some((d) => under(f, d)));
  t.same(covered, files, 'so every test file');
});

t.test('unit tests stay in-process: no daemon, no network, no child processes', async (t) => {
  for (const f of files.filter((x) => under(x, tiers.unit))) {
    const src = readFileSync(join(root, f), 'utf8');
    const bad = /from ['"](node:(net|http|https|dgram|child_process)|\.\.\/helpers\/(daemon|http|kafka|kafka-daemon|socket-activation|watch)\.js)['"]/.exec(src);
    t.equal(bad?.[1] ?? null, null, `${relative(root, join(root, f))} imports nothing that starts a daemon or talks to the network`);
  }
});
