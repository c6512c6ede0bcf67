/**
 * Every filesystem call as a fault point, without touching src/: the harness
 * patches node:fs (its promises, its sync calls and FileHandle's methods) in
 * this process and re-exports the patched functions to ES module importers
 * with `syncBuiltinESMExports()`, so `import { open } from 'node:fs/promises'`
 * in src/ sees them too. The idea of crash-consistency checkers such as ALICE
 * and CrashMonkey, at the granularity of one call.
 *
 *   const faults = await installFsFaults();    // once per test file
 *   faults.under(dir);                          // count and fail only paths below dir
 *   faults.failNth('fsync', 3, 'EIO');          // the 3rd fsync from now throws EIO
 *   const go = faults.holdNth('open', 1);       // the next open waits until go() (to order a race)
 *   faults.crashAfter('write', 5);              // after the 5th write, every mutating call throws ECRASHED
 *   faults.crashNow();                          // the same, from this moment
 *   faults.counts();                            // calls of each kind since reset()
 *   faults.reset();                             // counts to 0, no plans, no crash
 *
 * A "crash" freezes the disk as it was at that moment: the code under test
 * keeps running but can change nothing more on disk, as if the process had
 * died there; the test then drops that instance and opens a new one on the
 * same directory (the restart) with faults.reset() first.
 *
 * Calls made through file descriptors (FileHandle methods, fd-based sync
 * calls) are counted only when the descriptor was opened below `under()`.
 */
import type * as FsModule from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';

export type FsKind = 'open' | 'write' | 'fsync' | 'rename' | 'close' | 'unlink' | 'truncate';
export const FS_KINDS: readonly FsKind[] = ['open', 'write', 'fsync', 'rename', 'close', 'unlink', 'truncate'];

export interface FsFaults {
  /** Count and fail only calls on paths (or fds opened) below this directory; undefined: every path. */
  under(dir: string | undefined): void;
  /** The nth call of `kind` from now (1-based) fails with `code`; `hang: true` makes it never settle instead (async calls only). */
  failNth(kind: FsKind, nth: number, code?: string, opts?: { hang?: boolean }): void;
  /** The nth call of `kind` from now (async calls only) waits, then runs when the returned function is called: to order a race. */
  holdNth(kind: FsKind, nth: number): () => void;
  /** After the nth call of `kind` from now has run, every mutating call (all kinds) throws ECRASHED. */
  crashAfter(kind: FsKind, nth: number): void;
  /** Crash now: every mutating call from here on throws ECRASHED. */
  crashNow(): void;
  /** True once a crashAfter() point was reached (or crashNow()). */
  crashed(): boolean;
  counts(): Record<FsKind, number>;
  /** Every plan and count cleared, the crash lifted; the patches stay installed. */
  reset(): void;
  /** Remove the patches (also done at process exit, which tap does not need). */
  uninstall(): void;
}

// The CommonJS module object: an ES import gives a frozen namespace, and
// syncBuiltinESMExports() copies this object's properties to it.
const fs = createRequire(import.meta.url)('node:fs') as typeof FsModule;

interface Plan { kind: FsKind; at: number; code: string; hang: boolean; crash: boolean; hold?: Promise<void> }

let installed: FsFaults | null = null;

export async function installFsFaults(): Promise<FsFaults> {
  if (installed) return installed;
  const counts = {} as Record<FsKind, number>;
  let plans: Plan[] = [];
  let root: string | undefined;
  let isCrashed = false;
  const fdPaths = new Map<number, string>();
  const restore: Array<() => void> = [];

  const zero = (): void => { for (const k of FS_KINDS) counts[k] = 0; };
  zero();

  const watched = (p: unknown): boolean => {
    if (root === undefined) return true;
    if (typeof p === 'number') { const q = fdPaths.get(p); return q !== undefined && watched(q); }
    if (typeof p !== 'string' && !(p instanceof URL) && !Buffer.isBuffer(p)) return false;
    const abs = resolve(String(p instanceof URL ? p.pathname : p));
    return abs === root || abs.startsWith(root + '/');
  };
  const fault = (code: string, kind: FsKind): NodeJS.ErrnoException => {
    const e = new Error(`${code}: injected ${kind} fault`) as NodeJS.ErrnoException;
    e.code = code;
    e.syscall = kind;
    return e;
  };
  /** Decide for one call: null to run it, an error to throw, 'hang' to never settle, a promise to run it after. */
  const decide = (kind: FsKind, target: unknown): Error | 'hang' | Promise<void> | null => {
    if (!watched(target)) return null;
    if (isCrashed) return fault('ECRASHED', kind);
    const n = ++counts[kind];
    for (const p of plans) {
      if (p.kind !== kind || p.at !== n) continue;
      if (p.crash) { queueCrash = true; return null; }
      if (p.hold !== undefined) return p.hold;
      return p.hang ? 'hang' : fault(p.code, kind);
    }
    return null;
  };
  let queueCrash = false;
  const after = (): void => { if (queueCrash) { queueCrash = false; isCrashed = true; } };

  function patch<T extends object>(obj: T, name: keyof T & string, kind: FsKind, target: (self: unknown, args: unknown[]) => unknown, async: boolean): void {
    const orig = (obj as Record<string, unknown>)[name] as ((...a: unknown[]) => unknown) | undefined;
    if (typeof orig !== 'function') return;
    const wrapped = async
      ? function (this: unknown, ...args: unknown[]): unknown {
        const d = decide(kind, target(this, args));
        if (d === 'hang') return new Promise(() => {});
        if (d instanceof Promise) return d.then(() => orig.apply(this, args));
        if (d) return Promise.reject(d);
        const r = orig.apply(this, args) as Promise<unknown>;
        after();
        return r;
      }
      : function (this: unknown, ...args: unknown[]): unknown {
        const d = decide(kind, target(this, args));
        if (d === 'hang' || d instanceof Promise) throw fault('EIO', kind); // a sync call cannot wait without hanging the test
        if (d) throw d;
        const r = orig.apply(this, args);
        after();
        return r;
      };
    (obj as Record<string, unknown>)[name] = wrapped;
    restore.push(() => { (obj as Record<string, unknown>)[name] = orig; });
  }

  const first = (_: unknown, a: unknown[]): unknown => a[0];
  const handleFd = (self: unknown): unknown => (self as { fd: number }).fd;
  const P = fs.promises as unknown as Record<string, unknown>;

  // open: remember which path each descriptor is, for the fd-based calls.
  const origOpenP = fs.promises.open;
  P.open = async function (path: FsModule.PathLike, ...rest: unknown[]) {
    const d = decide('open', path);
    if (d === 'hang') return new Promise(() => {});
    if (d instanceof Promise) await d;
    else if (d) throw d;
    const h = await (origOpenP as (...a: unknown[]) => Promise<FsModule.promises.FileHandle>)(path, ...rest);
    after();
    fdPaths.set(h.fd, resolve(String(path)));
    // FileHandle's close is an own property of each handle (a class field), not on its prototype.
    const origClose = h.close;
    h.close = function (this: unknown, ...args: unknown[]) {
      const d = decide('close', h.fd);
      if (d === 'hang') return new Promise(() => {});
      if (d instanceof Promise) return d.then(() => origClose.apply(h, args as []));
      if (d) return Promise.reject(d);
      const r = origClose.apply(h, args as []);
      after();
      return r;
    } as typeof h.close;
    return h;
  };
  restore.push(() => { P.open = origOpenP; });
  const S = fs as unknown as Record<string, unknown>;
  const origOpenSync = fs.openSync;
  S.openSync = function (path: FsModule.PathLike, ...rest: unknown[]) {
    const d = decide('open', path);
    if (d) throw d === 'hang' || d instanceof Promise ? fault('EIO', 'open') : d;
    const fd = (origOpenSync as (...a: unknown[]) => number)(path, ...rest);
    after();
    fdPaths.set(fd, resolve(String(path)));
    return fd;
  };
  restore.push(() => { S.openSync = origOpenSync; });

  for (const n of ['writeFile', 'appendFile']) patch(P, n, 'write', first, true);
  for (const n of ['writeFileSync', 'appendFileSync', 'writeSync', 'writevSync']) patch(S, n, 'write', first, false);
  for (const n of ['fsyncSync', 'fdatasyncSync']) patch(S, n, 'fsync', first, false);
  patch(P, 'rename', 'rename', first, true);
  patch(S, 'renameSync', 'rename', first, false);
  patch(S, 'closeSync', 'close', first, false);
  for (const n of ['unlink', 'rm']) patch(P, n, 'unlink', first, true);
  for (const n of ['unlinkSync', 'rmSync']) patch(S, n, 'unlink', first, false);
  patch(P, 'truncate', 'truncate', first, true);
  for (const n of ['truncateSync', 'ftruncateSync']) patch(S, n, 'truncate', first, false);

  // FileHandle's prototype, from a handle of our own (opened before the patches count anything).
  const probe = await origOpenP('/dev/null', 'r');
  const proto = Object.getPrototypeOf(probe) as Record<string, unknown>;
  await probe.close();
  for (const n of ['write', 'writev', 'writeFile', 'appendFile']) patch(proto, n, 'write', handleFd, true);
  for (const n of ['sync', 'datasync']) patch(proto, n, 'fsync', handleFd, true);
  patch(proto, 'truncate', 'truncate', handleFd, true);
  patch(proto, 'close', 'close', handleFd, true);
  syncBuiltinESMExports();

  const api: FsFaults = {
    under(dir) { root = dir === undefined ? undefined : resolve(dir); },
    failNth(kind, nth, code = 'EIO', opts = {}) { plans.push({ kind, at: counts[kind] + nth, code, hang: opts.hang ?? false, crash: false }); },
    holdNth(kind, nth) {
      let release!: () => void;
      const hold = new Promise<void>((r) => { release = r; });
      plans.push({ kind, at: counts[kind] + nth, code: 'EIO', hang: false, crash: false, hold });
      return release;
    },
    crashAfter(kind, nth) { plans.push({ kind, at: counts[kind] + nth, code: 'ECRASHED', hang: false, crash: true }); },
    crashNow() { isCrashed = true; },
    crashed: () => isCrashed,
    counts: () => ({ ...counts }),
    reset() { zero(); plans = []; isCrashed = false; queueCrash = false; },
    uninstall() { for (const r of restore.reverse()) r(); restore.length = 0; syncBuiltinESMExports(); installed = null; },
  };
  installed = api;
  return api;
}
