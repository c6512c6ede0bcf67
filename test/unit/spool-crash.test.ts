// Every filesystem call of the spool a fault point (#30 "Find the next
// ones"): a fixed workload (append, roll, acknowledge, rewind, ledger,
// unlink, a restart with recovery) is run once to count its calls of each
// kind, then again for every N of every kind: once with the Nth call
// failing, once with the disk frozen right after it (a process crash) and a
// restart. The invariants are SpoolModel's (test/helpers/spool-model.ts).
import t from 'tap';
import { FS_KINDS, installFsFaults, type FsKind } from '../helpers/fs-faults.js';
import { SpoolModel } from '../helpers/spool-model.js';

const faults = await installFsFaults();

async function workload(m: SpoolModel): Promise<void> {
  if (!(await m.start())) await m.start();
  m.append(12);
  await m.settle();
  await m.read(8, (id) => id !== 3); // 3's report has not come: the watermark waits at 2
  await m.flush();
  m.append(30); // rolls into new segments
  await m.settle();
  await m.read(100, (id) => id % 7 !== 0);
  m.rewind(); // a failed report: everything after the watermark again
  await m.read(100);
  m.ackOut(() => true);
  await m.flush(); // the ledger, then the delivered segments go
  await m.restart(); // recovery
  m.append(15);
  await m.settle();
  await m.read(10);
  await m.flush();
  m.append(5);
  await m.settle();
}

const dry = new SpoolModel(faults);
await workload(dry);
const counts = faults.counts();
t.same(await dry.finish(), [], 'the workload without faults keeps every invariant');
dry.dispose();
t.ok(counts.open > 10 && counts.write > 5 && counts.fsync > 5 && counts.rename > 0 && counts.unlink > 0,
  `the workload makes calls of each kind: ${JSON.stringify(counts)}`);

for (const mode of ['fail', 'crash'] as const) {
  for (const kind of FS_KINDS) {
    t.test(`${mode} at every ${kind} (${counts[kind]})`, async (t) => {
      const found: string[] = [];
      for (let n = 1; n <= counts[kind]; n++) {
        const m = new SpoolModel(faults);
        if (mode === 'fail') faults.failNth(kind as FsKind, n, 'EIO');
        else faults.crashAfter(kind as FsKind, n);
        await workload(m);
        for (const v of await m.finish()) found.push(`${kind} #${n}: ${v}`);
        m.dispose();
      }
      t.same(found, [], `every invariant holds with a ${mode} at each of the ${counts[kind]} ${kind} calls`);
    });
  }
  // truncate runs only to take back a failed write (and in recovery after a
  // crash): each write fails, and so does (or crashes) the truncate after it.
  t.test(`${mode} at the truncate after every failed write (${counts.write})`, async (t) => {
    const found: string[] = [];
    for (let n = 1; n <= counts.write; n++) {
      const m = new SpoolModel(faults);
      faults.failNth('write', n, 'EIO');
      if (mode === 'fail') faults.failNth('truncate', 1, 'EIO');
      else faults.crashAfter('truncate', 1);
      await workload(m);
      for (const v of await m.finish()) found.push(`write #${n}, then truncate: ${v}`);
      m.dispose();
    }
    t.same(found, [], `every invariant holds`);
  });
}
