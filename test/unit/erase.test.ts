// scratchd erase's rewrite of one sealed day (src/file/erase.ts): the Lines
// removed byte for byte, manifest and index made anew, and a crash at every
// filesystem call of the rewrite (test/helpers/fs-faults.ts freezes the disk
// there) leaves, after recoverErasures, one day or the other whole: the
// files' SHA-256 is the manifest's.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { decodeEntries, encodeEntries } from '../../src/file/day-index.js';
import { eraseDay, recoverErasures } from '../../src/file/erase.js';
import { dayPaths, type DayPaths } from '../../src/file/paths.js';
import { FS_KINDS, installFsFaults } from '../helpers/fs-faults.js';

const faults = await installFsFaults();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'erase-unit-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** 12 Lines in 4 batches, uid 7 in Lines 2, 5, 6 and 11; sealed, gzipped or not. */
function sealedDay(root: string, gzip: boolean): { paths: DayPaths; plain: Buffer; kept: Buffer } {
  const paths = dayPaths(root, 'gr', '2026-12-01');
  mkdirSync(join(root, 'gr'), { recursive: true });
  const lines = Array.from({ length: 12 }, (_, i) => `{"n":"${i}","uid":"${[2, 5, 6, 11].includes(i) ? 7 : 100 + i}","t":"é<&>"}\n`);
  const plain = Buffer.from(lines.join(''));
  const kept = Buffer.from(lines.filter((_, i) => ![2, 5, 6, 11].includes(i)).join(''));
  const offsets = [0, 3, 6, 9].map((i) => Buffer.byteLength(lines.slice(0, i).join('')));
  writeFileSync(paths.idx, encodeEntries(offsets.map((offset, i) => ({ time: 1_000 + i, offset }))));
  const manifest: Record<string, unknown> = { flavor: 'gr', day: '2026-12-01', lines: 12, bytes: plain.length, sha256: sha(plain), firstTime: null, lastTime: null, version: 'test' };
  if (gzip) {
    const gz = gzipSync(plain);
    writeFileSync(paths.gz, gz);
    manifest.compressed = { file: 'gr-2026-12-01.log.gz', bytes: gz.length, sha256: sha(gz) };
  } else {
    writeFileSync(paths.log, plain);
  }
  writeFileSync(paths.done, `${JSON.stringify(manifest)}\n`);
  return { paths, plain, kept };
}

/** The day as it stands: its plain bytes, and whether they (and the .gz) are what the manifest says. */
function state(paths: DayPaths, gzip: boolean): { plain: Buffer; consistent: boolean; manifest: Record<string, any> } {
  const manifest = JSON.parse(readFileSync(paths.done, 'utf8'));
  const file = readFileSync(gzip ? paths.gz : paths.log);
  const plain = gzip ? gunzipSync(file) : file;
  const consistent = sha(plain) === manifest.sha256 && plain.length === manifest.bytes
    && (!gzip || (sha(file) === manifest.compressed.sha256 && file.length === manifest.compressed.bytes));
  return { plain, consistent, manifest };
}

for (const gzip of [false, true]) {
  t.test(`erase from a ${gzip ? 'gzipped' : 'plain'} day: bytes, manifest, index`, async (t) => {
    const root = dir(t);
    const { paths, kept } = sealedDay(root, gzip);
    t.same(await eraseDay(paths, 'uid', '7', { dryRun: true }), { lines: 12, erased: 4 }, 'dry run counts');
    t.ok(state(paths, gzip).plain.length > kept.length, 'dry run changed nothing');
    t.same(await eraseDay(paths, 'uid', '7', { now: Date.parse('2026-12-06T12:00:00Z') }), { lines: 12, erased: 4 });
    const s = state(paths, gzip);
    t.equal(s.plain.toString(), kept.toString(), 'the other Lines, byte for byte');
    t.ok(s.consistent, 'sha256 and bytes match the manifest');
    t.equal(s.manifest.lines, 8);
    t.same(s.manifest.erased, { count: 4, at: '2026-12-06T12:00:00.000Z' });
    const starts = new Set([0]);
    for (let i = 0; i < s.plain.length; i++) if (s.plain[i] === 10) starts.add(i + 1);
    const idx = decodeEntries(readFileSync(paths.idx));
    t.ok(idx.length >= 3 && idx.every((e) => starts.has(e.offset) && e.offset < s.plain.length), 'every index entry starts a Line of the new file');
    t.same(readdirSync(join(root, 'gr')).sort(), gzip
      ? ['gr-2026-12-01.log.done', 'gr-2026-12-01.log.gz', 'gr-2026-12-01.log.idx']
      : ['gr-2026-12-01.log', 'gr-2026-12-01.log.done', 'gr-2026-12-01.log.idx'], 'no temp file or journal left');
    t.same(await eraseDay(paths, 'uid', '7'), { lines: 8, erased: 0 }, 'a second run finds nothing');
    t.same(state(paths, gzip).manifest.erased.count, 4, 'and leaves the manifest');
  });

  t.test(`a crash at every filesystem call of the rewrite (${gzip ? 'gzip' : 'plain'}): one day or the other, whole`, async (t) => {
    let completed = 0;
    let crashes = 0;
    for (const kind of FS_KINDS) {
      for (let n = 1; n < 50; n++) {
        const root = dir(t);
        const { paths, plain, kept } = sealedDay(root, gzip);
        faults.reset();
        faults.under(root);
        faults.crashAfter(kind, n);
        await eraseDay(paths, 'uid', '7').catch(() => {});
        const crashed = faults.crashed();
        faults.reset();
        faults.under(undefined);
        await recoverErasures(join(root, 'gr'));
        const s = state(paths, gzip);
        const which = s.plain.equals(plain) ? 'old' : s.plain.equals(kept) ? 'new' : 'neither';
        if (which === 'neither' || !s.consistent) t.fail(`crash after ${kind} #${n}: ${which} day, consistent ${s.consistent}`);
        const left = readdirSync(join(root, 'gr')).filter((f) => f.includes('.eras'));
        if (left.length > 0) t.fail(`crash after ${kind} #${n}: left ${left.join(', ')}`);
        if (!crashed) { completed++; break; }
        crashes++;
      }
    }
    t.ok(crashes > 10, `${crashes} crash points tried`);
    t.equal(completed, FS_KINDS.length, 'every kind enumerated to the end');
  });
}

t.test('recoverErasures removes temp files left before the commit point', async (t) => {
  const root = dir(t);
  const { paths, plain } = sealedDay(root, false);
  writeFileSync(`${paths.log}.erase.tmp`, 'partial');
  writeFileSync(`${paths.done}.erase.tmp`, 'partial');
  t.same(await recoverErasures(join(root, 'gr')), []);
  t.notOk(existsSync(`${paths.log}.erase.tmp`));
  t.ok(state(paths, false).plain.equals(plain));
});

// A day is whatever bytes it holds, not only what scratchd writes: a Line that
// is no JSON (or not UTF-8), one ending in CRLF or holding a lone CR, a last
// Line without its newline. Erase splits at LF only and keeps every other
// Line exactly as it was; the index still lands on Line starts.
for (const gzip of [false, true]) {
  t.test(`the kept Lines keep their bytes whatever they hold (${gzip ? 'gzip' : 'plain'})`, async (t) => {
    const root = dir(t);
    const paths = dayPaths(root, 'gr', '2026-12-01');
    mkdirSync(join(root, 'gr'), { recursive: true });
    const lines = [
      Buffer.from('{"uid":"7","a":"1"}\n'),
      Buffer.from('{"uid":"8","crlf":"yes"}\r\n'),
      Buffer.concat([Buffer.from('not json \xff\xfe half '), Buffer.from([0xe2, 0x82]), Buffer.from(' utf-8\n')]),
      Buffer.from('a lone \r CR inside\n'),
      Buffer.from('{"uid":"7","b":"2"}\n'),
      Buffer.from('{"uid":"9","last":"no newline"}'),
    ];
    const plain = Buffer.concat(lines);
    const kept = Buffer.concat(lines.filter((_, i) => i !== 0 && i !== 4));
    const offsets = lines.map((_, i) => Buffer.concat(lines.slice(0, i)).length);
    writeFileSync(paths.idx, encodeEntries(offsets.map((offset, i) => ({ time: 1_000 + i, offset }))));
    const manifest: Record<string, unknown> = { flavor: 'gr', day: '2026-12-01', lines: 6, bytes: plain.length, sha256: sha(plain), firstTime: null, lastTime: null, version: 'test' };
    if (gzip) {
      const gz = gzipSync(plain);
      writeFileSync(paths.gz, gz);
      manifest.compressed = { file: 'gr-2026-12-01.log.gz', bytes: gz.length, sha256: sha(gz) };
    } else {
      writeFileSync(paths.log, plain);
    }
    writeFileSync(paths.done, `${JSON.stringify(manifest)}\n`);
    t.same(await eraseDay(paths, 'uid', '7'), { lines: 6, erased: 2 });
    const s = state(paths, gzip);
    t.ok(s.plain.equals(kept), `the other Lines, byte for byte: ${JSON.stringify(s.plain.toString('latin1'))}`);
    t.ok(s.consistent, 'sha256 and bytes match the manifest');
    t.equal(s.manifest.lines, 4);
    const starts = [0, 1, 2, 3].map((i) => Buffer.concat(lines.filter((_, j) => j !== 0 && j !== 4).slice(0, i)).length);
    t.same(decodeEntries(readFileSync(paths.idx)).map((e) => e.offset), starts, 'the index on every kept Line, as before');
  });
}
