import { bytes } from './bytes.js';

/** Results of the fast path are carved from slabs of this size; a query needing more room gets its own buffer. */
export const SLAB = 65536;
/** Int32s per entry of the fast path's entry table (see flat.ts). */
export const ENTRY_WIDTH = 6;

/**
 * All the memory the converter reuses from call to call, in one record: the
 * fast path allocates nothing per request but the view it returns. Safe
 * because a call runs to completion on the one JS thread and keeps nothing
 * past its return, except the slab ranges it handed out, which are never
 * written again (`slabAt` only moves forward; a full slab is replaced, not
 * reused).
 */
export const scratch = {
  /** decode.ts: a component's decoded bytes (grows to at most 256 KiB and stays). */
  decoded: bytes(4096),
  /** flat.ts: the query's UTF-8 bytes. */
  src: bytes(16384),
  /** flat.ts: where results are written; the part before `slabAt` is handed out. */
  slab: bytes(SLAB),
  slabAt: 0,
  /** flat.ts: where a result with repeated keys is compacted before being copied back. */
  compacted: bytes(16384),
  /** flat.ts: ENTRY_WIDTH Int32s per kept pair. */
  entries: new Int32Array(ENTRY_WIDTH * 64),
  /**
   * flat.ts: open-addressing index (entry + 1 per slot), used past a few entries. Reused
   * across calls without clearing: a slot counts only if its `stamp` is this `generation`.
   */
  table: new Int32Array(256),
  stamp: new Int32Array(256),
  generation: 0,
  /** flat.ts: how many entries scan() made (its second answer). */
  scanned: 0,
  /** flat.ts: whether this call uses the index yet. */
  indexed: false,
  /** flat.ts: whether this call met a repeated key (the result then needs compacting). */
  addDup: false,
  /** flat.ts: the last answer of flat(), while the entry table describes it (fromFlat). */
  line: null as Buffer | null,
  /** flat.ts: how many entries describe `line` (memberOf). */
  lineEntries: 0,
};
