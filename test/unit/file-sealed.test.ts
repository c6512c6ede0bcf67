// A sealed day is never written again, by any run, at any clock or zone
// (issue 30 A), and one flavor has one state across reloads (issue 30 C).
import { mkdirSync, mkdtempSync, promises as fsp, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { installFsFaults } from '../helpers/fs-faults.js';
import { dayFiles, dayText, manifestOf, fileConfig, flavor, line, setClock, startFile, until } from '../helpers/file-backend.js';

const at = (iso: string) => Date.parse(iso);

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'file-sealed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** 2026-12-06 (UTC) sealed with 5 Lines and compressed, as two earlier runs leave it. */
async function sealedDay(dir: string): Promise<void> {
  const gr = flavor('gr');
  setClock(at('2026-12-06T23:59:50Z'));
  const b = await startFile(fileConfig(dir, { compress: 'gzip' }), [gr]);
  for (let i = 1; i <= 5; i++) b.send(line(gr, at('2026-12-06T23:59:50Z') + i, `{"a":"${i}"}`));
  await until(() => b.counters.persisted === 5);
  setClock(at('2026-12-07T00:00:30Z'));
  await b.close(); // seals every past day
  const c = await startFile(fileConfig(dir, { compress: 'gzip' }), [gr]);
  await until(() => c.fileStats().compressed_days === 1, 10_000, 'the compression');
  await c.close();
}

t.test('a restart with the clock behind: the sealed day stays as it was; its Lines go to the next day, late', async (t) => {
  const dir = tempDir(t);
  await sealedDay(dir);
  const before = dayFiles(dir, 'gr', '2026-12-06');
  t.same(Object.keys(before).sort(), ['.done', '.gz', '.idx']);

  const gr = flavor('gr');
  setClock(at('2026-12-06T23:59:40Z'));
  const b = await startFile(fileConfig(dir, { compress: 'gzip' }), [gr]);
  for (let i = 1; i <= 3; i++) b.send(line(gr, Date.now(), `{"b":"${i}"}`));
  await until(() => b.counters.persisted === 3);
  t.equal(b.fileStats().late_lines, 3, 'three late Lines');
  t.equal(b.fileStats().flavors.gr!.late, 3);
  // Past midnight: the next pass and the shutdown seal what is past.
  setClock(at('2026-12-07T00:00:30Z'));
  await new Promise((r) => setTimeout(r, 1200));
  await b.close();
  t.same(dayFiles(dir, 'gr', '2026-12-06'), before, "the sealed day's files, byte for byte");
  t.same(dayText(dir, 'gr', '2026-12-06'), [1, 2, 3, 4, 5].map((i) => `{"a":"${i}"}`));
  t.same(dayText(dir, 'gr', '2026-12-07'), ['{"b":"1"}', '{"b":"2"}', '{"b":"3"}'], 'the new Lines in the first unsealed day');
});

t.test('a restart in another zone whose today is the sealed day: the same', async (t) => {
  const dir = tempDir(t);
  await sealedDay(dir);
  const before = dayFiles(dir, 'gr', '2026-12-06');
  // 05:00 UTC on the 7th is 19:00 on the 6th in Honolulu.
  const gr = flavor('gr', 'Pacific/Honolulu');
  setClock(at('2026-12-07T05:00:00Z'));
  const b = await startFile(fileConfig(dir, { compress: 'gzip' }), [gr]);
  b.send(line(gr, Date.now(), '{"c":"1"}'));
  await until(() => b.counters.persisted === 1);
  setClock(at('2026-12-07T10:00:30Z')); // past Honolulu's midnight
  await b.close();
  t.same(dayFiles(dir, 'gr', '2026-12-06'), before, "the sealed day's files, byte for byte");
  t.same(dayText(dir, 'gr', '2026-12-07'), ['{"c":"1"}']);
  t.equal(b.fileStats().late_lines, 1);
});

t.test('a reload that changes a flavor while its past day is failing: one state, the day sealed only after its Lines', async (t) => {
  const dir = tempDir(t);
  const faults = await installFsFaults();
  t.teardown(() => faults.reset());
  faults.reset();
  faults.under(join(dir, 'gr', 'gr-2026-12-06.log')); // the day file only: its manifest can be written
  const gr = flavor('gr');
  setClock(at('2026-12-07T00:00:30Z'));
  const b = await startFile(fileConfig(dir, { compress: 'gzip', idleCloseMs: 1000, retryMs: 20 }), [gr]);
  // Writes fail (a full disk) for about 2 s: the past day's Lines wait in their writer.
  for (let n = 1; n <= 100; n++) faults.failNth('write', n, 'EIO');
  for (let i = 1; i <= 5; i++) b.send(line(gr, at('2026-12-06T23:59:59Z') + i, `{"a":"${i}"}`));
  await until(() => b.counters.failed > 0);
  // The reload: one host more, a new Flavor object for gr.
  const gr2 = flavor('gr', 'UTC', ['gr.test', 'www.gr.test']);
  b.send(line(gr2, Date.now(), '{"b":"1"}'));
  await until(() => faults.counts().write >= 100, 20_000, 'the failing writes');
  await until(() => b.counters.persisted === 6, 10_000, 'every Line written');
  // The past day idles out, is sealed and compressed.
  await until(() => b.fileStats().compressed_days === 1, 10_000, 'the compression');
  await new Promise((r) => setTimeout(r, 1200)); // one more pass
  await b.close();
  t.same(dayText(dir, 'gr', '2026-12-06'), [1, 2, 3, 4, 5].map((i) => `{"a":"${i}"}`), 'the past day holds its 5 Lines');
  t.match(manifestOf(dir, 'gr', '2026-12-06'), { lines: 5 }, 'and its manifest says so');
  t.same(dayText(dir, 'gr', '2026-12-07'), ['{"b":"1"}']);
});

/**
 * The next directory listing (fs.promises.readdir, a pass's) waits until
 * release(): to order a race with a pass. fs-faults.ts holds only the calls
 * it can fail, and a listing changes nothing on disk.
 */
function holdReaddir(): { release: () => void; waiting: () => boolean } {
  const api = fsp as unknown as Record<string, unknown>;
  const orig = fsp.readdir;
  let release!: () => void;
  let waiting = false;
  const held = new Promise<void>((r) => { release = r; });
  api.readdir = async (...args: Parameters<typeof orig>) => {
    api.readdir = orig;
    waiting = true;
    await held;
    return orig(...args);
  };
  return { release, waiting: () => waiting };
}

t.test("a Line routed to a past day's file while a pass lists the directory: the day is sealed once, after its Lines", async (t) => {
  const dir = tempDir(t);
  // A crash (under load, file-faults-all's "crash after open #3") left the 5th's file unsealed.
  mkdirSync(join(dir, 'gr'));
  writeFileSync(join(dir, 'gr', 'gr-2026-12-05.log'), '{"a":"1"}\n{"a":"2"}\n');
  const gr = flavor('gr');
  setClock(at('2026-12-05T23:59:59.900Z'));
  const listing = holdReaddir();
  const b = await startFile(fileConfig(dir, { compress: 'gzip', idleCloseMs: 1000, retryMs: 5 }), [gr]);
  t.ok(listing.waiting(), 'its first pass is listing gr/');
  b.send(line(gr, at('2026-12-05T23:59:59.900Z'), '{"a":"3"}')); // the 5th is today: a writer for it, appending
  await until(() => b.counters.persisted === 1);
  setClock(at('2026-12-06T00:00:05Z')); // midnight and the grace pass while the listing is slow
  listing.release();
  await until(() => b.fileStats().sealed_days === 1, 10_000, 'the seal');
  // A Line answered before midnight and routed after the seal (a backlog) is late.
  b.send(line(gr, at('2026-12-05T23:59:59.950Z'), '{"b":"1"}'));
  await until(() => b.counters.persisted === 2);
  await b.close();
  t.same(dayText(dir, 'gr', '2026-12-05'), ['{"a":"1"}', '{"a":"2"}', '{"a":"3"}'], 'the day holds its Lines, once');
  t.match(manifestOf(dir, 'gr', '2026-12-05'), { lines: 3 }, 'and its manifest says so');
  t.same(dayText(dir, 'gr', '2026-12-06'), ['{"b":"1"}'], 'the Line routed after the seal went to the next day');
  t.equal(b.fileStats().late_lines, 1);
  t.equal(b.fileStats().sealed_days, 1, 'sealed once');
});

t.test("the manifest's lastTime is the last Line's, inside one batch too", async (t) => {
  const dir = tempDir(t);
  const gr = flavor('gr');
  setClock(at('2026-12-07T00:00:30Z'));
  const b = await startFile(fileConfig(dir), [gr]);
  const t0 = at('2026-12-06T23:59:58.100Z');
  // Sent in one turn: one batch, one index entry (the first Line's time).
  b.send(line(gr, t0, '{"a":"1"}'));
  b.send(line(gr, t0 + 4, '{"a":"2"}'));
  b.send(line(gr, t0 + 9, '{"a":"3"}'));
  await until(() => b.counters.persisted === 3);
  await b.close();
  t.equal(readFileSync(join(dir, 'gr', 'gr-2026-12-06.log.idx')).length, 16, 'one batch');
  t.match(manifestOf(dir, 'gr', '2026-12-06'), { lines: 3, firstTime: new Date(t0).toISOString(), lastTime: new Date(t0 + 9).toISOString() });
});

t.test('an fsync that fails at shutdown is not swallowed: close() rejects, naming the file', async (t) => {
  const dir = tempDir(t);
  const faults = await installFsFaults();
  t.teardown(() => faults.reset());
  faults.reset();
  faults.under(dir);
  const gr = flavor('gr');
  setClock(at('2026-12-07T10:00:00Z'));
  const b = await startFile(fileConfig(dir), [gr]);
  b.send(line(gr, Date.now(), '{"a":"1"}'));
  await until(() => b.counters.persisted === 1);
  faults.failNth('fsync', 1, 'EIO');
  await t.rejects(b.close(), /EIO.*gr-2026-12-07\.log/);
  t.equal(b.counters.failed, 1, 'counted as a failure');
});
