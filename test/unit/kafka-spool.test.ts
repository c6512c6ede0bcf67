// The Kafka spool on real files: the record codec, append/read/ack, segment
// deletion, bounds, and recovery from damaged segments and ledgers.
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { crc32c } from '@aws-crypto/crc32c';
import { makeLogger } from '../../src/log.js';
import { readLedger } from '../../src/kafka/spool/ledger.js';
import { decodeRecords, encodeRecord } from '../../src/kafka/spool/record.js';
import { recoverSpool } from '../../src/kafka/spool/open-scan.js';
import { Spool, type SpoolConfig, type SpoolDropReason } from '../../src/kafka/spool/spool.js';

const log = makeLogger('silent');

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'spool-unit-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function config(d: string, over: Partial<SpoolConfig> = {}): SpoolConfig {
  return { enabled: true, dir: d, segmentBytes: 4096, fsyncMs: 3_600_000, maxBytes: 1 << 30, minFreeBytes: 0, ...over };
}

async function openSpool(d: string, over: Partial<SpoolConfig> = {}) {
  const drops: { reason: SpoolDropReason; flavor: string; time: number }[] = [];
  const s = new Spool(config(d, over), log, (reason, flavor, time) => drops.push({ reason, flavor, time }));
  await s.open();
  return { s, drops };
}

const line = (i: number): Buffer => Buffer.from(JSON.stringify({ id: String(i), pad: 'x'.repeat(40) }));
const segs = (d: string): string[] => readdirSync(d).filter((n) => n.endsWith('.seg')).sort();

/** Read everything from the spool, acknowledging as we go; returns the ids. */
async function drainAll(s: Spool): Promise<string[]> {
  const ids: string[] = [];
  for (;;) {
    const rs = await s.read(100);
    if (rs.length === 0) return ids;
    for (const r of rs) {
      ids.push((JSON.parse(r.payload.toString()) as { id: string }).id);
      s.ack(r.seq);
    }
  }
}

t.test('codec: a record round-trips; a flipped bit, a cut and a bad length are each caught', async (t) => {
  const a = encodeRecord({ seq: 7, time: 1764500000123, flavor: 'gr', payload: line(1) });
  const b = encodeRecord({ seq: 8, time: 1764500000124, flavor: 'tr.x', payload: Buffer.alloc(0) });
  const both = Buffer.concat([a, b]);
  const d = decodeRecords(both);
  t.equal(d.problem, null);
  t.same(d.records.map((r) => [r.seq, r.time, r.flavor, r.payload.toString()]),
    [[7, 1764500000123, 'gr', line(1).toString()], [8, 1764500000124, 'tr.x', '']]);
  for (let bit = 0; bit < both.length * 8; bit += 13) {
    const flipped = Buffer.from(both);
    flipped[bit >> 3]! ^= 1 << (bit & 7);
    const f = decodeRecords(flipped);
    t.ok(f.problem !== null || f.records.length < 2 || f.records.some((r, i) => r.seq !== d.records[i]!.seq) === false,
      'no silent change');
    t.ok(f.records.length < 2, `bit ${bit}: a record is refused`);
  }
  t.equal(decodeRecords(both.subarray(0, both.length - 1)).problem, 'truncated');
  t.equal(decodeRecords(both.subarray(0, both.length - 1)).records.length, 1);
  const bad = Buffer.from(both);
  bad.writeUInt32LE(0xffffffff, 0);
  t.equal(decodeRecords(bad).problem, 'length');
});

t.test('codec: a record written by an earlier build (CRC-32C) is still read; its flipped bit still caught', async (t) => {
  const r = encodeRecord({ seq: 9, time: 1764500000125, flavor: 'gr', payload: line(3) });
  r.writeUInt32LE(crc32c(r.subarray(8)), 4);
  const d = decodeRecords(r);
  t.equal(d.problem, null);
  t.same(d.records.map((x) => [x.seq, x.time, x.flavor, x.payload.toString()]), [[9, 1764500000125, 'gr', line(3).toString()]]);
  r[40]! ^= 4;
  t.equal(decodeRecords(r).problem, 'checksum');
});

t.test('reads in small slices across chunk boundaries, a record larger than a chunk too, in order', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d, { segmentBytes: 8 << 20 });
  // ~300 KiB records put the 1 MiB read chunks' ends inside records; one of 1.5 MiB is larger than a chunk.
  const sizes = [300_000, 300_001, 299_999, 1_500_000, 300_000, 7, 300_000, 300_000];
  const body = (i: number): Buffer => Buffer.from(JSON.stringify({ id: String(i), pad: String(i % 10).repeat(sizes[i]!) }));
  sizes.forEach((_, i) => s.append('gr', 1000 + i, body(i)));
  await s.flush();
  const got: string[] = [];
  for (;;) {
    const rs = await s.read(2);
    if (rs.length === 0) break;
    for (const r of rs) {
      t.ok(r.payload.equals(body(Number((JSON.parse(r.payload.toString()) as { id: string }).id))), `record ${r.seq} intact`);
      got.push((JSON.parse(r.payload.toString()) as { id: string }).id);
      s.ack(r.seq);
    }
  }
  t.same(got, sizes.map((_, i) => String(i)));
  t.ok(s.isEmpty());
  t.equal(s.quarantined, 0, 'nothing taken for damage');
  await s.close();
});

t.test('append, flush, read in order, ack: segments roll and are unlinked once delivered', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d);
  for (let i = 0; i < 200; i++) t.ok(s.append(i % 2 ? 'gr' : 'tr', 1000 + i, line(i)));
  t.equal(s.records, 200);
  t.same(await s.read(10), [], 'nothing readable before the flush');
  await s.flush();
  t.ok(segs(d).length > 2, `rolled into ${segs(d).length} segments`);
  const ids = await drainAll(s);
  t.same(ids, Array.from({ length: 200 }, (_, i) => String(i)), 'every record once, in order');
  t.ok(s.isEmpty());
  await s.flush();
  t.same(segs(d), [], 'every segment unlinked');
  t.same(readLedger(d), { acked: 200 });
  // The sequence goes on after the spool emptied.
  s.append('gr', 5000, line(999));
  await s.flush();
  t.same(segs(d), ['00000000000000000201.seg']);
  await s.close();
});

t.test('out-of-order acknowledgements: the watermark waits for the lowest', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d);
  for (let i = 0; i < 5; i++) s.append('gr', i, line(i));
  await s.flush();
  const rs = await s.read(5);
  s.ack(rs[2]!.seq);
  s.ack(rs[1]!.seq);
  t.equal(s.records, 5, 'nothing below the first is acknowledged');
  s.ack(rs[0]!.seq);
  t.equal(s.records, 2);
  // A failure: rewind hands out only what is not acknowledged.
  s.rewind();
  const again = await s.read(10);
  t.same(again.map((r) => r.seq), [rs[3]!.seq, rs[4]!.seq]);
  await s.close();
  // After a restart, the persisted watermark holds.
  const { s: s2 } = await openSpool(d);
  t.same((await s2.read(10)).map((r) => r.seq), [4, 5]);
  await s2.close();
});

t.test('maxBytes: the newest are dropped as spool_full, the oldest kept', async (t) => {
  const d = dir(t);
  const { s, drops } = await openSpool(d, { maxBytes: 1000 });
  let kept = 0;
  for (let i = 0; i < 50; i++) if (s.append('gr', i, line(i))) kept++;
  t.ok(kept > 5 && kept < 50, `${kept} kept`);
  t.equal(drops.length, 50 - kept);
  t.ok(drops.every((x) => x.reason === 'spool_full'));
  t.equal(s.drops.spool_full, 50 - kept);
  await s.flush();
  t.same(await drainAll(s), Array.from({ length: kept }, (_, i) => String(i)));
  await s.close();
});

t.test('minFreeBytes above the free space: disk_full', async (t) => {
  const d = dir(t);
  const { s, drops } = await openSpool(d, { minFreeBytes: Number.MAX_SAFE_INTEGER });
  t.notOk(s.append('gr', 1, line(1)));
  t.same(drops.map((x) => x.reason), ['disk_full']);
  await s.close();
});

/** A spool of 3 segments with 60 records, closed. */
async function filled(t: Test): Promise<string> {
  const d = dir(t);
  const { s } = await openSpool(d, { segmentBytes: 2048 });
  for (let i = 0; i < 60; i++) {
    s.append('gr', i, line(i));
    if (i % 20 === 19) await s.flush();
  }
  await s.close();
  return d;
}

t.test('recovery: a truncated tail is cut at its last whole record', async (t) => {
  const d = await filled(t);
  const names = segs(d);
  const tail = join(d, names[names.length - 1]!);
  truncateSync(tail, statSync(tail).size - 5);
  const r = await recoverSpool(d);
  t.equal(r.quarantined, 1);
  t.ok(readdirSync(join(d, 'quarantine')).length === 1, 'the cut bytes are kept in quarantine/');
  const { s } = await openSpool(d);
  t.same(await drainAll(s), Array.from({ length: 59 }, (_, i) => String(i)), 'all but the torn record, in order');
  await s.close();
});

/** The offsets of a segment's records. */
function offsets(path: string): number[] {
  return decodeRecords(readFileSync(path)).records.map((r) => r.offset);
}

t.test('recovery: a payload bit flip in the middle segment loses that one record, every intact one is kept (#30 E)', async (t) => {
  const d = await filled(t);
  const mid = join(d, segs(d)[1]!);
  const at = offsets(mid)[3]!;
  const buf = readFileSync(mid);
  buf[at + 40]! ^= 0x10; // inside the 4th record's payload; its length field intact
  writeFileSync(mid, buf);
  const { s } = await openSpool(d);
  t.equal(s.quarantined, 1, 'counted');
  const ids = await drainAll(s);
  const lost = Array.from({ length: 60 }, (_, i) => String(i)).filter((id) => !ids.includes(id));
  t.equal(lost.length, 1, `only the damaged record is lost (${lost.join(',')})`);
  t.same(ids, [...ids].sort((a, b) => Number(a) - Number(b)), 'in order');
  t.equal(readdirSync(join(d, 'quarantine')).length, 1, 'its bytes kept in quarantine/');
  await s.close();
});

t.test('recovery: a damaged length field loses that record; the scan finds the next intact one (#30 E)', async (t) => {
  const d = await filled(t);
  const mid = join(d, segs(d)[1]!);
  const at = offsets(mid)[5]!;
  const buf = readFileSync(mid);
  buf.writeUInt32LE(0x00ffffff, at); // a length far past the segment's end
  writeFileSync(mid, buf);
  const { s } = await openSpool(d);
  const ids = await drainAll(s);
  t.equal(ids.length, 59, 'every other record');
  t.same(ids, [...ids].sort((a, b) => Number(a) - Number(b)), 'in order');
  await s.close();
  const { s: s2 } = await openSpool(d);
  t.equal(s2.quarantined, 0, 'the segment was rewritten whole: nothing to cut at the next start');
  await s2.close();
});

t.test('a bit flip after recovery, met while draining: that record skipped, the rest of the segment read (#30 E)', async (t) => {
  const d = await filled(t);
  const { s } = await openSpool(d);
  const mid = join(d, segs(d)[1]!);
  const at = offsets(mid)[2]!;
  const buf = readFileSync(mid);
  buf[at + 40]! ^= 0x01;
  writeFileSync(mid, buf);
  const ids = await drainAll(s);
  t.equal(ids.length, 59, 'every other record');
  t.equal(s.quarantined, 1);
  t.ok(s.isEmpty());
  await s.close();
});

t.test('recovery: a zero-length segment and garbage file are handled, never thrown', async (t) => {
  const d = await filled(t);
  writeFileSync(join(d, '00000000000000099999.seg'), '');
  appendFileSync(join(d, '00000000000000100000.seg'), Buffer.from('garbage garbage garbage'));
  const { s } = await openSpool(d);
  t.same(await drainAll(s), Array.from({ length: 60 }, (_, i) => String(i)));
  t.ok(s.quarantined >= 1);
  await s.close();
});

for (const how of ['deleted', 'corrupt'] as const) {
  t.test(`recovery: a ${how} ledger sends everything again (duplicates, no loss)`, async (t) => {
    const d = await filled(t);
    {
      const { s } = await openSpool(d);
      const rs = await s.read(10);
      for (const r of rs) s.ack(r.seq);
      await s.close();
    }
    t.same(readLedger(d), { acked: 10 });
    if (how === 'deleted') unlinkSync(join(d, 'ledger.json'));
    else writeFileSync(join(d, 'ledger.json'), '{"acked":');
    const { s } = await openSpool(d);
    t.same(await drainAll(s), Array.from({ length: 60 }, (_, i) => String(i)));
    await s.close();
  });
}

t.test('read-only recovery changes nothing', async (t) => {
  const d = await filled(t);
  const tail = join(d, segs(d)[2]!);
  truncateSync(tail, statSync(tail).size - 3);
  const before = readdirSync(d).map((n) => [n, statSync(join(d, n)).size]);
  const r = await recoverSpool(d, true);
  t.equal(r.perFlavor.get('gr')?.records, 59);
  t.same(readdirSync(d).map((n) => [n, statSync(join(d, n)).size]), before);
});

t.test('handOver: once every written record was read, the unwritten appends are handed out from RAM, once', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d);
  for (let i = 0; i < 5; i++) s.append('gr', i, line(i));
  await s.flush();
  t.notOk(s.canHandOver(), 'written records not read yet');
  const first = await s.read(100);
  for (let i = 5; i < 8; i++) s.append('gr', i, line(i));
  t.ok(s.canHandOver());
  const handed = s.handOver();
  t.same([...first, ...handed].map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7, 8], 'in order, none twice');
  await s.flush();
  t.same(await s.read(100), [], 'not read again from disk once written');
  for (const r of [...first, ...handed]) s.ack(r.seq);
  t.ok(s.isEmpty());
  await s.flush();
  t.same(segs(d), [], 'and deleted once acknowledged');
  await s.close();
});

t.test('appends reach the segment file at the end of their event-loop turn, before any fsync (#34 §3)', async (t) => {
  const d = dir(t);
  const { s } = await openSpool(d); // fsyncMs: an hour
  for (let i = 0; i < 30; i++) s.append('gr', i, line(i));
  t.same(segs(d), [], 'nothing written within the turn');
  let size = 0;
  for (let k = 0; k < 200 && size < 30 * 80; k++) {
    await new Promise((r) => setTimeout(r, 5));
    size = segs(d).reduce((n, f) => n + statSync(join(d, f)).size, 0);
  }
  const r = await recoverSpool(d, true);
  t.equal(r.perFlavor.get('gr')?.records, 30, 'a crash now loses none: all 30 are in the file (page cache)');
  await s.close();
});

/** The log lines (level, msg) a spool writes while opening `d`. */
async function openLog(d: string): Promise<{ level: number; msg: string }[]> {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => { lines.push(JSON.parse(l) as { level: number; msg: string }); } });
  const s = new Spool(config(d), logger, () => {});
  await s.open();
  await s.close();
  return lines;
}

t.test('a spool that never held a Line opens silently; a missing ledger beside records is an error (#28)', async (t) => {
  const fresh = join(dir(t), 'spool'); // not even created yet
  const first = await openLog(fresh);
  t.same(first.filter((l) => l.level >= 40), [], 'first start: nothing at warn or above');
  t.same((await openLog(fresh)).filter((l) => l.level >= 40), [], 'restart: nothing at warn or above');
  const d = await filled(t);
  unlinkSync(join(d, 'ledger.json'));
  const lines = await openLog(d);
  t.same(lines.filter((l) => l.level >= 40).map((l) => [l.level, l.msg]),
    [[50, 'kafka spool: ledger missing: every spooled record will be sent again']], 'records without a ledger: one error');
});
