#!/usr/bin/env node
// npm run mutate: targeted mutation testing. Each mutation in
// scripts/mutations.json changes one line that carries a guarantee (an exact
// lookup made a prefix match, a bound off by one, a write moved after a
// delete) and names the test files that must notice. For each, the source is
// changed in place, the named tests run (after a build when any of them runs
// dist/), and the source is restored whatever happens. A mutation the tests
// pass is a survivor: a guarantee no test holds.
//
// A hand-written table instead of Stryker: Stryker's thousands of generated
// mutants, each running tap's daemon-starting tests, do not fit in an hour on
// two cores; a few dozen chosen lines do, and each one names what it breaks.
//
//   node scripts/mutate.mjs [--only SUBSTRING]   (inside the trixie chroot)
//
// Prints one line per mutation and "mutate: K killed of N (P%)"; exits 1 when
// a mutation survives or no longer applies (its `find` text is gone: the
// table must follow the code).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const table = JSON.parse(readFileSync(join(root, 'scripts/mutations.json'), 'utf8'));
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;

let restore = null;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { restore?.(); process.exit(130); });

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 15 * 60_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

let killed = 0;
let total = 0;
const survivors = [];
for (const m of table.mutations) {
  if (only && !m.id.includes(only)) continue;
  total++;
  const path = join(root, m.file);
  const original = readFileSync(path, 'utf8');
  const at = original.indexOf(m.find);
  if (at < 0 || original.indexOf(m.find, at + 1) >= 0) {
    console.log(`stale   ${m.id}: ${m.file} has ${at < 0 ? 'no' : 'more than one'} ${JSON.stringify(m.find)}`);
    survivors.push(m.id);
    continue;
  }
  restore = () => writeFileSync(path, original);
  try {
    writeFileSync(path, original.slice(0, at) + m.replace + original.slice(at + m.find.length));
    const needsBuild = m.tests.some((f) => !f.startsWith('test/unit/'));
    const build = needsBuild ? run('npx', ['tsc', '-p', 'tsconfig.json']) : { ok: true };
    // A mutant that does not compile is killed by the compiler, which proves nothing: say so.
    if (!build.ok) { console.log(`nocomp  ${m.id}`); survivors.push(m.id); continue; }
    const tests = run('npx', ['tap', '--disable-coverage', ...m.tests]);
    if (tests.ok) { console.log(`SURVIVE ${m.id}: ${m.why}`); survivors.push(m.id); } else { console.log(`killed  ${m.id}`); killed++; }
  } finally {
    restore();
    restore = null;
  }
}
if (total > 0 && table.mutations.some((m) => !m.tests.every((f) => f.startsWith('test/unit/')))) run('npx', ['tsc', '-p', 'tsconfig.json']);
const rate = total === 0 ? 0 : Math.round((killed / total) * 100);
console.log(`mutate: ${killed} killed of ${total} (${rate}%)${survivors.length ? `; not killed: ${survivors.join(', ')}` : ''}`);
process.exit(survivors.length === 0 ? 0 : 1);
