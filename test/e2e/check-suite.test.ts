// scripts/check-suite.mjs against TAP it did not write: a copy of the script
// in a scratch checkout whose .tap/test-results holds one file's TAP, so what
// it accepts is what a real run would accept.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';

const script = join(import.meta.dirname, '../../scripts/check-suite.mjs');

function check(tap: string): { status: number | null; out: string } {
  const root = mkdtempSync(join(tmpdir(), 'check-suite-'));
  try {
    mkdirSync(join(root, 'scripts'));
    copyFileSync(script, join(root, 'scripts/check-suite.mjs'));
    mkdirSync(join(root, 'test/unit'), { recursive: true });
    writeFileSync(join(root, 'test/unit/a.test.ts'), '');
    const result = join(root, '.tap/test-results/test/unit/a.test.ts.tap');
    mkdirSync(dirname(result), { recursive: true });
    writeFileSync(result, tap);
    const r = spawnSync(process.execPath, [join(root, 'scripts/check-suite.mjs')], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    return { status: r.status, out: r.stdout };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

t.test('a file whose points all pass is accepted', async (t) => {
  const r = check('TAP version 14\nok 1 - top\n# Subtest: sub\n    ok 1 - inner\n    1..1\nok 2 - sub\n1..2\n');
  t.equal(r.status, 0, r.out);
  t.match(r.out, /suite: 3 passed, 0 failed/);
});

// What tap 21 writes for `t.test('x', async () => {})` (or a subtest that
// returns early, or plans 0): the subtest proved nothing, and tap itself
// passes it even with fail-skip.
t.test('a subtest that asserted nothing fails the run', async (t) => {
  const r = check('TAP version 14\nok 1 - top\n# Subtest: empty subtest\n    1..0\nok 2 - empty subtest # time=3.4ms\n\n1..2\n');
  t.equal(r.status, 1, r.out);
  t.match(r.out, /check-suite: test\/unit\/a\.test\.ts: 1\.\.0 \(no test point in a subtest\)/);
});

t.test('a file with no test point fails the run', async (t) => {
  const r = check('');
  t.equal(r.status, 1, r.out);
  t.match(r.out, /a\.test\.ts: no test points/);
});
