#!/usr/bin/env node
// After the suite: every test file under test/ ran and proved something.
// tap keeps each file's raw TAP in .tap/test-results/<file>.tap; a file with
// no result, no test point, a SKIP or TODO directive, or a plan of 1..0 (tap's
// "no tests found", which it counts as a skip; nested, a subtest that
// asserted nothing, which tap passes) fails the run. tap's own
// --fail-skip/--fail-todo (package.json) catch most of these too; this check
// also catches the file that never ran at all.
//
// Prints one line per problem, then the suite's closing line
// "suite: N passed, N failed" (test points at every depth, over all files),
// and exits 1 on any problem or failure.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const results = join(root, '.tap/test-results');

function testFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const point = /^\s*(not )?ok \d+\b(.*)$/;
const directive = /#\s*(SKIP|TODO)\b/i;
const problems = [];
let passed = 0;
let failed = 0;
const files = testFiles(join(root, 'test'));
for (const file of files) {
  const tapFile = join(results, `${file}.tap`);
  if (!existsSync(tapFile)) { problems.push(`${file}: never ran (no ${relative(root, tapFile)})`); continue; }
  const lines = readFileSync(tapFile, 'utf8').split('\n');
  let points = 0;
  for (const line of lines) {
    const m = point.exec(line);
    if (m) {
      points++;
      if (m[1]) failed++; else passed++;
      if (directive.test(m[2])) problems.push(`${file}: ${line.trim()}`);
    } else if (/^\s*1\.\.0\b/.test(line)) {
      // At the top: the file ran no test; nested: a subtest asserted nothing (tap passes both).
      problems.push(`${file}: ${line.trim()} (no test point${/^\s/.test(line) ? ' in a subtest' : 's'})`);
    }
  }
  if (points === 0) problems.push(`${file}: no test points`);
}
// scripts/test-all.sh runs the boot test beside the suite and passes its result.
const boot = process.env.SCRATCHD_BOOT_RESULT;
if (boot === 'pass') passed++;
else if (boot !== undefined) { failed++; problems.push(`test/boot/systemd-boot-test: ${boot}`); }
for (const p of problems) console.log(`check-suite: ${p}`);
console.log(`check-suite: ${files.length} test files, ${problems.length} problems`);
console.log(`suite: ${passed} passed, ${failed} failed`);
process.exit(problems.length > 0 || failed > 0 ? 1 : 0);
