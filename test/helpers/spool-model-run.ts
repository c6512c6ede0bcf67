/**
 * The spool's model-based test (#30), in the spirit of Vector's disk_v2
 * model tests and FoundationDB's simulation: fast-check draws sequences of
 * append, settle, read (acknowledging some), acknowledge, hand-over,
 * rewind, roll, flush, restart and crash, with filesystem faults planned at
 * random calls, and SpoolModel checks the invariants at the end.
 * SPOOL_MODEL_SEED=<seed> replays a run; the seed and the shrunk sequence
 * are in the failure.
 */
import fc from 'fast-check';
import type { Test } from 'tap';
import { FS_KINDS, installFsFaults, type FsKind } from './fs-faults.js';
import { SpoolModel } from './spool-model.js';

type Op =
  | { op: 'append'; n: number; pad: number }
  | { op: 'settle' }
  | { op: 'read'; max: number; ackEvery: number }
  | { op: 'ackOut'; every: number }
  | { op: 'handOver' }
  | { op: 'rewind' }
  | { op: 'roll' }
  | { op: 'flush' }
  | { op: 'restart' }
  | { op: 'crash' }
  | { op: 'fault'; kind: FsKind; nth: number; crash: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('append' as const), n: fc.integer({ min: 1, max: 20 }), pad: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 4, arbitrary: fc.constant({ op: 'settle' as const }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('read' as const), max: fc.integer({ min: 1, max: 60 }), ackEvery: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('ackOut' as const), every: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'handOver' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'rewind' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'roll' as const }) },
  { weight: 3, arbitrary: fc.constant({ op: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'restart' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'crash' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('fault' as const), kind: fc.constantFrom(...FS_KINDS), nth: fc.integer({ min: 1, max: 6 }), crash: fc.boolean() }) },
);

async function step(m: SpoolModel, o: Op, faults: Awaited<ReturnType<typeof installFsFaults>>): Promise<void> {
  if (m.crashed) await m.recover(); // a crash point was reached: the process died there
  switch (o.op) {
    case 'append': m.append(o.n, o.pad); break;
    case 'settle': await m.settle(); break;
    case 'read': { let k = 0; await m.read(o.max, () => ++k % o.ackEvery === 0); break; }
    case 'ackOut': { let k = 0; m.ackOut(() => ++k % o.every === 0); break; }
    case 'handOver': m.handOver(); break;
    case 'rewind': m.rewind(); break;
    case 'roll': m.append(1, 900); break; // more than what is left of a 1 KiB segment
    case 'flush': await m.flush(); break;
    case 'restart': await m.restart(); break;
    case 'crash': await m.crash(); break;
    case 'fault': if (o.crash) faults.crashAfter(o.kind, o.nth); else faults.failNth(o.kind, o.nth, 'EIO'); break;
  }
}

/** As many random runs as fit in `ms` (SPOOL_MODEL_MS overrides), each of up to `maxOps` operations. */
export async function runSpoolModel(t: Test, ms: number, maxOps: number): Promise<void> {
  const budget = Number(process.env.SPOOL_MODEL_MS ?? ms);
  const faults = await installFsFaults();
  const seed = process.env.SPOOL_MODEL_SEED === undefined ? Date.now() ^ (Math.random() * 0x7fffffff) : Number(process.env.SPOOL_MODEL_SEED);
  let runs = 0;
  let ops = 0;
  try {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: maxOps, size: 'max' }), async (seq) => {
      const m = new SpoolModel(faults);
      try {
        await m.start();
        for (const o of seq) {
          await step(m, o, faults);
          m.checkEmpty();
        }
        const v = await m.finish();
        if (v.length > 0) throw new Error(v.join('\n'));
      } finally {
        faults.reset();
        m.dispose();
      }
      runs++;
      ops += seq.length;
    }), { seed, numRuns: 1_000_000, interruptAfterTimeLimit: budget, markInterruptAsFailure: false });
    t.ok(runs > 0, `${runs} random runs in ${budget} ms (${ops} operations), seed ${seed}: every invariant held`);
  } catch (err) {
    const cause = (err as Error).cause;
    t.fail(`the spool's model test failed (replay: SPOOL_MODEL_SEED=${seed})`, { error: (err as Error).message, violations: cause instanceof Error ? cause.message : String(cause) });
  }
}
