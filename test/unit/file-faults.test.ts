// Every filesystem call of the file backend as a fault point (issue 30): the
// harness in test/helpers/file-faults-harness.ts, failing the Nth call of
// each kind and crashing after it. This tier tries the first and the last
// call of each kind; FILE_FAULTS_ALL=1 (test/system/file-faults-all.test.ts)
// enumerates every N.
import { rmSync } from 'node:fs';
import t from 'tap';
import { countCalls, makeBase, runOne } from '../helpers/file-faults-harness.js';
import { FS_KINDS, installFsFaults } from '../helpers/fs-faults.js';

const all = process.env.FILE_FAULTS_ALL === '1';
const PER_KIND = 2;

/** N to try out of 1..count: all of them, or PER_KIND spread over the range. */
function pick(count: number): number[] {
  if (all || count <= PER_KIND) return Array.from({ length: count }, (_, i) => i + 1);
  return [...new Set(Array.from({ length: PER_KIND }, (_, i) => 1 + Math.round((i * (count - 1)) / (PER_KIND - 1))))];
}

t.test('the file backend over every filesystem fault point', async (t) => {
  const faults = await installFsFaults();
  const base = await makeBase();
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  t.same(await runOne(base, faults, null, 0, false), [], 'a clean run keeps every invariant');
  const counts = await countCalls(base, faults);
  for (const kind of FS_KINDS) {
    t.ok(counts[kind] > 0 || kind === 'truncate', `${kind}: ${counts[kind]} calls in a clean run`);
    for (const n of pick(counts[kind])) {
      t.same(await runOne(base, faults, kind, n, false), [], `${kind} #${n} fails`);
      // A full disk takes the writer's other path (statfs before each retry).
      if (kind === 'write') t.same(await runOne(base, faults, kind, n, false, 'ENOSPC'), [], `${kind} #${n} fails with ENOSPC`);
      t.same(await runOne(base, faults, kind, n, true), [], `crash after ${kind} #${n}, restart`);
    }
  }
});
