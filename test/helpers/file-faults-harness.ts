// The file backend's crash-consistency harness (issue 30, "every filesystem
// call is a fault point"): one scenario with Lines, a day rollover (with a
// reload that changes the flavor), sealing,
// compression and retention, run over test/helpers/fs-faults.ts failing the
// Nth call of each kind, and crashing (the disk frozen) after it, followed by
// a restart on what the disk held. After each run the invariants are checked:
// - every Line the backend took is in a day file of its flavor (its own day,
//   or a later one as late), once, or counted dropped, or (after a crash) is
//   one of the newest: what is missing is a suffix of what was sent, never
//   something older than a Line that is there, and nothing counted persisted
//   before the crash is missing;
// - a sealed day's bytes and manifest never change (the one sealed before
//   the run starts), and every manifest matches its file (lines, sha256, the
//   .gz's sha256 when compressed); a day past the retention is removed whole;
// - a Line sent after a restart with the clock behind, for a day sealed
//   before the crash, goes to a later day;
// - close() returns (no hang).
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { FileBackend } from '../../src/file/backend.js';
import type { Manifest } from '../../src/file/manifest.js';
import { dayFiles, fileConfig, flavor, line, setClock, startFile } from './file-backend.js';
import type { FsFaults, FsKind } from './fs-faults.js';

const at = (iso: string) => Date.parse(iso);
const gr = flavor('gr');
const config = (dir: string) => fileConfig(dir, { compress: 'gzip', retainDays: 5, idleCloseMs: 20, retryMs: 5, queueCapacity: 1000 });
/** Sealed and compressed before the run: must never change. */
export const KEPT_DAY = '2026-12-04';
/** Sealed before the run, past the retention once the run's day turns: pruned. */
const OLD_DAY = '2026-11-20';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number, stop: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && !stop() && Date.now() < end) await sleep(5);
}

/** A directory as earlier runs leave it: an old sealed day and a recent sealed, compressed one. */
export async function makeBase(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'file-faults-base-'));
  setClock(at('2026-12-05T00:00:10Z'));
  const b = await startFile(config(dir), [gr]);
  for (let i = 0; i < 3; i++) b.send(line(gr, at(`${OLD_DAY}T12:00:00Z`) + i, `{"old":${i}}`));
  for (let i = 0; i < 3; i++) b.send(line(gr, at(`${KEPT_DAY}T12:00:00Z`) + i, `{"kept":${i}}`));
  const deadline = Date.now() + 5000;
  while (b.counters.persisted < 6 && Date.now() < deadline) await sleep(5);
  await b.close(); // seals both
  const c = await startFile({ ...config(dir), retainDays: null }, [gr]);
  while (c.fileStats().compressed_days < 2 && Date.now() < deadline) await sleep(5);
  await c.close();
  return dir;
}

interface Run {
  sent: string[];
  /** Lines counted persisted when the disk froze (all of them without a crash). */
  persisted: number;
  dropped: number;
  crashed: boolean;
  backend: FileBackend;
}

/** The scenario: Lines before and after midnight, then the pass seals, compresses and prunes. */
async function scenario(dir: string, faults: FsFaults): Promise<Run> {
  const sent: string[] = [];
  setClock(at('2026-12-05T23:59:59.700Z'));
  const b = await startFile(config(dir), [gr]);
  const send = (json: string) => {
    if (b.send(line(gr, Date.now(), json))) sent.push(json);
  };
  const stop = () => faults.crashed();
  for (let i = 0; i < 5; i++) send(`{"d1":${i}}`);
  await until(() => b.counters.persisted >= sent.length, 300, stop);
  for (let i = 5; i < 8; i++) send(`{"d1":${i}}`);
  await until(() => b.counters.persisted >= sent.length, 300, stop);
  setClock(at('2026-12-06T00:00:00.300Z'));
  // A reload at midnight changed gr (a host added): its Lines come with a new Flavor object.
  const gr2 = flavor('gr', 'UTC', ['gr.test', 'www.gr.test']);
  for (let i = 0; i < 4; i++) if (b.send(line(gr2, Date.now(), `{"d2":${i}}`))) sent.push(`{"d2":${i}}`);
  const s = () => b.fileStats();
  await until(() => s().compressed_days >= 1 && s().pruned_days >= 1 && b.counters.persisted >= sent.length, 1500, stop);
  return { sent, persisted: b.counters.persisted, dropped: b.counters.dropped, crashed: faults.crashed(), backend: b };
}

/** What a reader finds of gr's Lines, by day; problems with manifests are pushed to `bad`. */
function readDays(dir: string, bad: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const fdir = join(dir, 'gr');
  for (const name of existsSync(fdir) ? readdirSync(fdir) : []) {
    const m = /^gr-(\d{4}-\d{2}-\d{2})\.log$/.exec(name) ?? /^gr-(\d{4}-\d{2}-\d{2})\.log\.done$/.exec(name);
    if (m === null) continue;
    const day = m[1]!;
    if (out.has(day)) continue;
    const log = join(fdir, `gr-${day}.log`);
    const done = existsSync(`${log}.done`) ? (JSON.parse(readFileSync(`${log}.done`, 'utf8')) as Manifest) : null;
    let plain: Buffer;
    if (done?.compressed !== undefined) {
      if (!existsSync(`${log}.gz`)) {
        bad.push(`${day}: the manifest names a .gz that is missing`);
        continue;
      }
      const gz = readFileSync(`${log}.gz`);
      if (sha(gz) !== done.compressed.sha256) bad.push(`${day}: the .gz does not match its manifest`);
      plain = gunzipSync(gz);
    } else if (existsSync(log)) {
      plain = readFileSync(log);
    } else {
      bad.push(`${day}: a manifest without its file`);
      continue;
    }
    const text = plain.toString();
    if (text !== '' && !text.endsWith('\n')) bad.push(`${day}: a partial last Line`);
    const lines = text === '' ? [] : text.slice(0, -1).split('\n');
    if (done !== null && (done.lines !== lines.length || done.sha256 !== sha(plain))) {
      bad.push(`${day}: manifest says ${done.lines} Lines ${done.sha256.slice(0, 8)}, the file has ${lines.length} ${sha(plain).slice(0, 8)}`);
    }
    out.set(day, lines);
  }
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function closeWithin(b: FileBackend, ms: number, bad: string[], what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'hang'>((r) => { timer = setTimeout(() => r('hang'), ms); });
  const r = await Promise.race([b.close().then(() => 'ok', (e: Error) => `rejected: ${e.message}`), timeout]);
  clearTimeout(timer);
  if (r === 'hang') bad.push(`${what}: close() did not return within ${ms} ms`);
  // A rejection (a failed fsync at close, say) is reported by the backend itself: not a broken invariant.
}

/** Every sealed day as a reader sees it: the manifest without `compressed` (compression adds it), and the Lines. */
function sealedDays(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const fdir = join(dir, 'gr');
  for (const name of existsSync(fdir) ? readdirSync(fdir) : []) {
    const m = /^gr-(\d{4}-\d{2}-\d{2})\.log\.done$/.exec(name);
    if (m === null) continue;
    const { compressed: _, ...core } = JSON.parse(readFileSync(join(fdir, name), 'utf8')) as Manifest;
    out.set(m[1]!, JSON.stringify(core) + JSON.stringify(readDays(dir, []).get(m[1]!) ?? null));
  }
  return out;
}

/** A day sealed earlier is unchanged (compressed meanwhile, perhaps), or pruned if past the retention. */
function checkSealed(before: Map<string, string>, after: Map<string, string>, bad: string[], when: string): void {
  for (const [day, text] of before) {
    if (after.get(day) === text) continue;
    if (!after.has(day) && day === OLD_DAY) continue;
    bad.push(`the day ${day}, sealed ${when}, changed: ${text} → ${after.get(day) ?? 'gone'}`);
  }
}

/** The invariants over the Lines of one run. */
function checkLines(run: Run, days: Map<string, string[]>, bad: string[]): void {
  const found = new Map<string, string>(); // json → day
  for (const [day, lines] of days) {
    for (const l of lines) {
      if (l.startsWith('{"old"') || l.startsWith('{"kept"') || l.startsWith('{"late"')) continue;
      if (found.has(l)) bad.push(`${l} twice (${found.get(l)} and ${day})`);
      found.set(l, day);
      const own = l.startsWith('{"d1"') ? '2026-12-05' : '2026-12-06';
      if (day < own) bad.push(`${l} in ${day}, before its own day`);
    }
  }
  const missing = run.sent.filter((l) => !found.has(l));
  const firstMissing = run.sent.findIndex((l) => !found.has(l));
  if (firstMissing !== -1 && run.sent.slice(firstMissing).some((l) => found.has(l))) {
    bad.push(`an older Line is missing while a newer one is there: missing ${missing.join(' ')}`);
  }
  if (run.crashed) {
    if (firstMissing !== -1 && firstMissing < run.persisted) bad.push(`${run.persisted} Lines counted persisted before the crash, only ${firstMissing} found`);
  } else if (missing.length > run.dropped) {
    bad.push(`${missing.length} Lines missing, ${run.dropped} counted dropped: ${missing.join(' ')}`);
  }
}

/**
 * What the disk held at the crash, copied while calls issued before it may
 * still complete (an unlink or rename already on the thread pool): a file
 * that vanishes under the copy means one did; copy again. Either state is
 * one a crash could leave.
 */
function copyWhileSettling(from: string, to: string): void {
  for (let attempt = 1; ; attempt++) {
    try {
      cpSync(from, to, { recursive: true });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 10) throw err;
      rmSync(to, { recursive: true, force: true });
    }
  }
}

/**
 * One run over a copy of `base`: the Nth call of `kind` fails (crash: false),
 * or the disk freezes after it (crash: true) and a new backend restarts on a
 * copy of what it held. Returns the broken invariants (empty: all held).
 */
export async function runOne(base: string, faults: FsFaults, kind: FsKind | null, nth: number, crash: boolean, code = 'EIO'): Promise<string[]> {
  const bad: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'file-faults-run-'));
  const restartDir = mkdtempSync(join(tmpdir(), 'file-faults-restart-'));
  try {
    cpSync(base, dir, { recursive: true });
    const kept = dayFiles(dir, 'gr', KEPT_DAY);
    const sealedBefore = sealedDays(dir);
    let sealedAtCrash = new Map<string, string>();
    faults.reset();
    faults.under(dir);
    if (kind !== null) {
      if (crash) faults.crashAfter(kind, nth);
      else faults.failNth(kind, nth, code);
    }
    const run = await scenario(dir, faults);
    let final = dir;
    if (!run.crashed) {
      // The run's shutdown: a crash point may lie there too.
      const closing: string[] = [];
      await closeWithin(run.backend, 5000, closing, 'the run');
      run.crashed = faults.crashed();
      run.persisted = run.backend.counters.persisted;
      run.dropped = run.backend.counters.dropped;
      if (!run.crashed) bad.push(...closing);
    }
    if (run.crashed) {
      // The process died there: what the disk held is copied, the dead instance
      // is let go (its directory no longer watched, it finishes on its own), and
      // a new one starts on the copy a few seconds later.
      copyWhileSettling(dir, restartDir);
      faults.reset();
      faults.under(join(tmpdir(), 'file-faults-nothing'));
      sealedAtCrash = sealedDays(restartDir);
      faults.under(restartDir);
      void closeWithin(run.backend, 10_000, [], 'the crashed instance');
      // The restart with the clock a little behind: a Line for a day sealed before the crash is late.
      setClock(at('2026-12-05T23:59:59.900Z'));
      const b = await startFile(config(restartDir), [gr]);
      b.send(line(gr, Date.now(), '{"late":0}'));
      await sleep(20);
      setClock(at('2026-12-06T00:00:05Z'));
      const end = Date.now() + 1500;
      while (Date.now() < end && (Object.keys(b.fileStats().unsealed_past_days).length > 0 || b.fileStats().sealed_days === 0)) await sleep(5);
      await sleep(60); // a pass or two: compressions finished
      await closeWithin(b, 5000, bad, 'after the restart');
      final = restartDir;
    }
    // The harness's own reads are not the backend's calls: nothing watched, nothing failed.
    faults.reset();
    faults.under(join(tmpdir(), 'file-faults-nothing'));
    const now = dayFiles(final, 'gr', KEPT_DAY);
    if (JSON.stringify(now) !== JSON.stringify(kept)) bad.push(`the sealed day ${KEPT_DAY} changed: ${Object.keys(kept).join(',')} → ${Object.keys(now).join(',')}`);
    const days = readDays(final, bad);
    checkLines(run, days, bad);
    const after = sealedDays(final);
    checkSealed(sealedBefore, after, bad, 'before the run');
    checkSealed(sealedAtCrash, after, bad, 'before the crash');
    const leftovers = readdirSync(join(final, 'gr')).filter((n) => n.startsWith(`gr-${OLD_DAY}`));
    if (leftovers.length > 0) bad.push(`a day past the retention left behind: ${leftovers.join(' ')}`);
    if (run.crashed) {
      const late = [...days].filter(([, lines]) => lines.includes('{"late":0}')).map(([day]) => day);
      if (late.length !== 1 || late[0]! < '2026-12-05' || sealedAtCrash.has(late[0]!)) bad.push(`the Line sent after the restart is in ${late.join(', ') || 'no day'}`);
    }
  } finally {
    faults.reset();
    rmSync(dir, { recursive: true, force: true });
    rmSync(restartDir, { recursive: true, force: true });
  }
  return bad;
}

/** The calls of each kind one clean run makes. */
export async function countCalls(base: string, faults: FsFaults): Promise<Record<FsKind, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'file-faults-count-'));
  try {
    cpSync(base, dir, { recursive: true });
    faults.reset();
    faults.under(dir);
    const run = await scenario(dir, faults);
    await run.backend.close();
    return faults.counts();
  } finally {
    faults.reset();
    rmSync(dir, { recursive: true, force: true });
  }
}
