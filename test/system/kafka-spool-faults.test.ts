/**
 * The Kafka spool when its own disk fails: a full filesystem (a tmpfs this
 * test mounts; the suite runs as root in the chroot), full already at start,
 * and damaged segments and a deleted ledger from a previous run. Each is
 * counted, never a crash, and HTTP answers 200 throughout. A private broker
 * (KAFKA_BOOTSTRAP ignored); never skips.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodeRecords, findNextRecord } from '../../src/kafka/spool/record.js';
import { mainJs } from '../helpers/daemon.js';
import { request } from '../helpers/http.js';
import { startKafka, waitForMetadata } from '../helpers/kafka.js';
import { health, stats, topicNow, traffic, waitFor } from '../helpers/kafka-daemon.js';
import { readTopic, segments, spoolDir, startSpoolDaemon } from '../helpers/kafka-spool.js';

const kafka = await startKafka({ owned: true });
t.teardown(() => kafka.stop());
t.afterEach(async () => {
  await waitForMetadata(kafka.bootstrap, 5000).catch(() => kafka.restart());
});

import { sleep } from '../helpers/wait.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { withoutTapHooks } from '../helpers/without-tap-hooks.js';

const tmpfs = (t: Test, size: string): string => mountTmpfs(t, spoolDir(), size);

/** ids of the messages in a topic, in offset order: all of them, once no daemon writes to it. */
async function topicIds(topic: string): Promise<string[]> {
  const got = await topicNow(kafka.bootstrap, topic);
  return got.sort((a, b) => a.offset - b.offset).map((m) => (JSON.parse(m.value.toString()) as { id: string }).id);
}

t.test('the spool\'s filesystem fills up: the newest Lines are dropped as disk_full and counted; the rest is delivered', async (t) => {
  const dir = tmpfs(t, '128k'); // small: the outage fills it within seconds
  await kafka.kill();
  const d = await startSpoolDaemon(kafka.bootstrap, dir, { spool: { minFreeBytes: 0 } });
  t.teardown(() => d.stop());
  const tr = traffic(d, 'gr.test', 2, 2);
  await waitFor('disk_full drops', async () => (await stats(d)).kafka_spool.dropped_total.disk_full > 0, 120_000);
  await sleep(1000);
  const h = await health(d);
  t.equal(h.body.backends.kafka?.state, 'down', `Lines being lost is down, not spooling: ${JSON.stringify(h.body.backends.kafka)}`);
  const a = await tr.stop();
  t.same(a.bad, [], `every one of ${a.ok.length} requests answered 200`);
  const s = await stats(d);
  t.ok(s.kafka_spool.dropped_total.disk_full > 0, `disk_full drops: ${s.kafka_spool.dropped_total.disk_full}`);
  t.equal(s.backends.kafka.dropped, s.kafka_spool.dropped_total.disk_full + s.kafka_spool.dropped_total.spool_error,
    'every drop counted by reason');
  await kafka.restart();
  await waitFor('the spool empties', async () => (await stats(d)).kafka_spool.records === 0, 120_000);
  t.equal(await d.stop(), 0);
  const ids = await topicIds(d.topics.gr!);
  t.equal(new Set(ids).size, ids.length, 'none twice');
  t.equal(ids.length + s.backends.kafka.dropped, a.ok.length, `delivered ${ids.length} + dropped ${s.backends.kafka.dropped} = answered`);
  // The oldest were kept: what was dropped is the newest of the outage.
  const delivered = new Set(ids);
  const firstLost = a.ok.findIndex((id) => !delivered.has(id));
  t.ok(firstLost > 0, `the first ${firstLost} answered are all delivered`);
});

t.test('the spool\'s filesystem is full at start: scratchd serves, counts disk_full, and spools again once there is room', async (t) => {
  const dir = tmpfs(t, '256k');
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
  } catch { /* ENOSPC: full, as wanted */ }
  await kafka.kill();
  const d = await startSpoolDaemon(kafka.bootstrap, dir, { spool: { minFreeBytes: 0 } });
  t.teardown(() => d.stop());
  for (let i = 0; i < 50; i++) t.equal((await request(d.port, `/track?id=full${i}`, { host: 'tr.test' })).status, 200, 'answered 200');
  await waitFor('disk_full drops', async () => (await stats(d)).kafka_spool.dropped_total.disk_full > 0, 30_000);
  unlinkSync(join(dir, 'filler'));
  await sleep(500); // the spool looks at the free space at every flush (fsyncMs)
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) {
    t.equal((await request(d.port, `/track?id=room${i}`, { host: 'tr.test' })).status, 200, 'answered 200');
    ids.push(`room${i}`);
  }
  await waitFor('spooled again', async () => (await stats(d)).kafka_spool.records >= 50, 30_000);
  await kafka.restart();
  const got = await readTopic(kafka.bootstrap, d.topics.tr!, ids);
  t.same(got.missing, [], 'the Lines answered once there was room are delivered');
  t.equal(await d.stop(), 0);
});

t.test('damaged segments and a deleted ledger from a previous run: cut, quarantined, counted; the rest delivered; HTTP 200 throughout', async (t) => {
  const dir = spoolDir();
  await kafka.kill();
  const d1 = await startSpoolDaemon(kafka.bootstrap, dir, { spool: { segmentBytes: 8192 } });
  t.teardown(() => d1.stop());
  const tr1 = traffic(d1, 'uk.test', 2, 5);
  await waitFor('a few segments', () => segments(dir).length >= 5, 60_000);
  const a = await tr1.stop();
  t.equal(await d1.stop(), 0);

  const names = segments(dir).sort();
  t.ok(names.length >= 5, `${names.length} segments`);
  const tail = join(dir, names[names.length - 1]!);
  truncateSync(tail, statSync(tail).size - 5); // a torn last record
  const mid = join(dir, names[1]!);
  const buf = readFileSync(mid);
  buf[Math.floor(buf.length / 2)]! ^= 0x04; // one flipped bit
  writeFileSync(mid, buf);
  writeFileSync(join(dir, names[2]!), ''); // a zero-length segment
  unlinkSync(join(dir, 'ledger.json'));
  // What should survive: every intact record of each segment (a damaged one is skipped alone).
  const expected: string[] = [];
  for (const n of segments(dir).sort()) {
    const seg = readFileSync(join(dir, n));
    let last = 0;
    for (let at = 0; at >= 0 && at < seg.length;) {
      const d = decodeRecords(seg, at);
      for (const r of d.records) expected.push((JSON.parse(r.payload.toString()) as { id: string }).id);
      last = d.records.at(-1)?.seq ?? last;
      at = d.problem === null ? seg.length : findNextRecord(seg, d.end + 1, last);
    }
  }
  t.ok(expected.length < a.ok.length, `${a.ok.length - expected.length} Lines damaged on disk`);
  // `scratchd spool` reports the state and the damage, and changes nothing.
  const before = readdirSync(dir).sort().map((n) => `${n}:${statSync(join(dir, n)).size}`);
  const cli = JSON.parse(execFileSync(...withoutTapHooks(process.execPath, [mainJs, 'spool', '--config', join(d1.dir, 'config.json'), '--json']), { encoding: 'utf8' })) as
    { records: number; ledger: string; problems: string[]; flavors: Record<string, { records: number }> };
  t.equal(cli.records, expected.length, 'scratchd spool: the intact records');
  t.equal(cli.flavors.uk?.records, expected.length, 'scratchd spool: per flavor');
  t.equal(cli.ledger, 'missing');
  t.ok(cli.problems.length >= 3, `scratchd spool lists the damage: ${cli.problems.join('; ')}`);
  t.same(readdirSync(dir).sort().map((n) => `${n}:${statSync(join(dir, n)).size}`), before, 'scratchd spool changed nothing');

  await kafka.restart();
  const d2 = await startSpoolDaemon(kafka.bootstrap, dir, { topics: d1.topics });
  t.teardown(() => d2.stop());
  const tr2 = traffic(d2, 'gr.test', 2, 10);
  const got = await readTopic(kafka.bootstrap, d1.topics.uk!, expected);
  t.same(got.missing, [], `every intact record (${expected.length}) delivered`);
  t.equal(got.duplicates, 0, 'none twice');
  const s = await stats(d2);
  t.ok(s.kafka_spool.quarantined_total >= 2, `quarantined: ${s.kafka_spool.quarantined_total}`);
  t.ok(readdirSync(join(dir, 'quarantine')).length >= 2, 'the cut bytes are kept in quarantine/');
  await waitFor('the spool empties', async () => (await stats(d2)).kafka_spool.records === 0, 60_000);
  const b = await tr2.stop();
  t.same(b.bad, [], 'HTTP 200 throughout');
  t.ok(d2.logs.some((l) => String(l.msg).includes('ledger missing')), 'the missing ledger is logged');
  t.equal(await d2.stop(), 0);
});
