// The replay progress file is replaced whole and reaches the disk: a saved
// position survives a crash, and a disk that fails to keep it is an error.
import * as fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import * as ProgressModule from '../../src/recovery/replay-progress.js';
import type { Progress } from '../../src/recovery/replay-progress.js';

const progress = (offset: number): Progress => ({
  flavor: 'gr', from: '2026-11-20T09:00:00.000Z', to: '2026-11-20T11:00:00.000Z', day: '2026-11-20', offset,
  delivered: offset, complete: false, retry: [], undeliverable: [],
});

// The CommonJS node:fs object: syncBuiltinESMExports() copies its properties
// to the ES namespace that src/atomic-write.ts imports from.
const fsObject = createRequire(import.meta.url)('node:fs') as typeof fs;

/** node:fs with its fsync calls seen (and failed, when asked) until the test ends. */
function withFsyncs(t: Test, fail: boolean): { m: typeof ProgressModule; synced: string[] } {
  const synced: string[] = [];
  const paths = new Map<number, string>();
  const { openSync, fsyncSync } = fsObject;
  fsObject.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (openSync as (...a: unknown[]) => number)(p, ...rest);
    paths.set(fd, String(p));
    return fd;
  }) as typeof openSync;
  fsObject.fsyncSync = (fd: number) => {
    synced.push(paths.get(fd) ?? String(fd));
    if (fail) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' });
    fsyncSync(fd);
  };
  syncBuiltinESMExports();
  t.teardown(() => {
    Object.assign(fsObject, { openSync, fsyncSync });
    syncBuiltinESMExports();
  });
  // The progress module writes through src/atomic-write.ts, which sees this node:fs.
  return { m: ProgressModule, synced };
}

t.test('each save fsyncs the new file before the rename and the directory after it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-progress-'));
  const file = join(dir, 'state', 'replay-gr-1-2.json');
  const { m, synced } = withFsyncs(t, false);
  m.writeProgress(file, progress(20));
  t.same(synced, [`${file}.tmp`, join(dir, 'state')]);
  t.same(m.readProgress(file), progress(20));
});

t.test('an fsync that fails is an error, and the saved progress stays the old one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-progress-'));
  const file = join(dir, 'replay-gr-1-2.json');
  (withFsyncs(t, false)).m.writeProgress(file, progress(10));
  const { m } = withFsyncs(t, true);
  t.throws(() => m.writeProgress(file, progress(20)), { code: 'EIO' });
  t.same(m.readProgress(file)?.offset, 10, 'the old progress');
});

t.test('progress of an earlier version (no lists) reads with empty lists', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-progress-'));
  const file = join(dir, 'p.json');
  const { m } = withFsyncs(t, false);
  const { retry: _r, undeliverable: _u, ...old } = progress(5);
  fs.writeFileSync(file, JSON.stringify(old));
  t.same(m.readProgress(file), progress(5));
});
