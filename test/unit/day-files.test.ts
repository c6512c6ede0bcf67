// The pure parts of the day files: names, the index entry format, what a pass decides per day.
import t from 'tap';
import { ENTRY_BYTES, decodeEntries, encodeEntry } from '../../src/file/day-index.js';
import { planDays } from '../../src/file/day-plan.js';
import { addDays, DayNames, dayOfName, dayPaths, templateProblem } from '../../src/file/paths.js';

t.test('names', async (t) => {
  t.match(dayPaths('/var/log/scratchd', 'gr', '2026-11-30'), {
    log: '/var/log/scratchd/gr/gr-2026-11-30.log', idx: '/var/log/scratchd/gr/gr-2026-11-30.log.idx',
    done: '/var/log/scratchd/gr/gr-2026-11-30.log.done', gz: '/var/log/scratchd/gr/gr-2026-11-30.log.gz',
  });
  t.equal(dayOfName('gr', 'gr-2026-11-30.log.gz.tmp'), '2026-11-30');
  t.equal(dayOfName('gr', 'gr-2026-11-30.log.1'), null, 'a rotated copy is not ours');
  t.equal(dayOfName('gr', 'grx-2026-11-30.log'), null);
  t.equal(dayOfName('a-b', 'a-b-2026-11-30.log.done'), '2026-11-30', 'a flavor name with a dash');
  t.equal(addDays('2026-03-01', -1), '2026-02-28');
  t.equal(addDays('2026-12-31', 1), '2027-01-01');
});

t.test('index entries: 16 bytes, int64 LE time then offset', async (t) => {
  const time = Date.parse('2026-11-30T23:59:59.001Z');
  const b = encodeEntry(Buffer.alloc(ENTRY_BYTES), time, 5_000_000_000);
  t.equal(b.length, 16);
  t.equal(b.readBigInt64LE(0), BigInt(time));
  t.equal(b.readBigInt64LE(8), 5_000_000_000n);
  const two = Buffer.concat([Buffer.from(b), encodeEntry(Buffer.alloc(16), time + 1, 7), Buffer.alloc(5)]);
  t.same(decodeEntries(two), [{ time, offset: 5_000_000_000 }, { time: time + 1, offset: 7 }], 'a trailing partial entry is ignored');
});

t.test('a pass: seal, compress, prune, temp files; never today, an open day, or an unsealed day', async (t) => {
  const names = [
    'gr-2026-11-20.log', 'gr-2026-11-20.log.idx', 'gr-2026-11-20.log.done', // sealed, old
    'gr-2026-11-21.log', // unsealed, old
    'gr-2026-11-22.log.gz', 'gr-2026-11-22.log.done', 'gr-2026-11-22.log.idx', // compressed, old
    'gr-2026-11-28.log', 'gr-2026-11-28.log.done', 'gr-2026-11-28.log.gz.tmp', // sealed, recent, interrupted compression
    'gr-2026-11-29.log', // yesterday: within its grace
    'gr-2026-11-27.log', // open in this process
    'gr-2026-11-30.log', // today
    'gr-2026-11-30.log.1', 'other', 'uk-2026-11-20.log',
  ];
  const plans = planDays({
    names, flavor: 'gr', today: '2026-11-30', graceDay: '2026-11-29', pruneBefore: '2026-11-25', compress: true, open: new Set(['2026-11-27']),
  });
  const by = Object.fromEntries(plans.map((p) => [p.day, p]));
  t.same(Object.keys(by), ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-28', '2026-11-29']);
  t.match(by['2026-11-20'], { prune: true, seal: false, compress: false });
  t.match(by['2026-11-21'], { prune: false, seal: true, unsealed: true }, 'unsealed: sealed first, never pruned');
  t.match(by['2026-11-22'], { prune: true });
  t.match(by['2026-11-28'], { prune: false, compress: true, removeTemp: ['gr-2026-11-28.log.gz.tmp'] });
  t.match(by['2026-11-29'], { seal: false, unsealed: true }, 'within its grace: left for its writer');
  const final = planDays({ names, flavor: 'gr', today: '2026-11-30', graceDay: '2026-11-30', pruneBefore: null, compress: false, open: new Set() });
  t.same(final.filter((p) => p.seal).map((p) => p.day), ['2026-11-21', '2026-11-27', '2026-11-29'], 'at shutdown every past day is sealed');
  t.same(final.filter((p) => p.prune || p.compress), []);
});

t.test('a prune cut short after the manifest went: the .gz left is pruned by the next pass', async (t) => {
  // pruneDay removes the manifest first, then the rest: a crash in between leaves the .gz (and .idx) alone.
  const names = ['gr-2026-11-20.log.gz', 'gr-2026-11-20.log.idx', 'gr-2026-11-21.log.gz'];
  const plans = planDays({ names, flavor: 'gr', today: '2026-11-30', graceDay: '2026-11-29', pruneBefore: '2026-11-25', compress: true, open: new Set() });
  t.same(plans.map((p) => [p.day, p.prune]), [['2026-11-20', true], ['2026-11-21', true]]);
  const kept = planDays({ names, flavor: 'gr', today: '2026-11-30', graceDay: '2026-11-29', pruneBefore: null, compress: true, open: new Set() });
  t.same(kept.filter((p) => p.prune || p.seal), [], 'without retention it stays, and is never sealed again');
});

t.test('names from a template (backends.file.name)', async (t) => {
  const names = new DayNames('{flavor}-{instance}-{day}.log', 'edge-a');
  t.match(dayPaths('/l', 'gr', '2026-11-30', names), { log: '/l/gr/gr-edge-a-2026-11-30.log', done: '/l/gr/gr-edge-a-2026-11-30.log.done' });
  t.same(names.parse('gr', 'gr-edge-a-2026-11-30.log.gz.tmp'), { day: '2026-11-30', suffix: '.gz.tmp' });
  t.equal(names.parse('gr', 'gr-edge-b-2026-11-30.log'), null, "another instance's file is not ours");
  t.equal(names.parse('gr', 'gr-2026-11-30.log'), null, 'nor a file under the default name');
  const plain = new DayNames('{day}', 'x');
  t.same(plain.parse('gr', '2026-11-30.idx'), { day: '2026-11-30', suffix: '.idx' }, 'no .log needed');
  const plans = planDays({ names: ['gr-edge-a-2026-11-20.log', 'gr-edge-a-2026-11-20.log.done', 'gr-edge-a-2026-11-20.log.gz.tmp'],
    flavor: 'gr', today: '2026-11-30', graceDay: '2026-11-29', pruneBefore: null, compress: true, open: new Set(), dayNames: names });
  t.match(plans, [{ day: '2026-11-20', seal: false, compress: true, removeTemp: ['gr-edge-a-2026-11-20.log.gz.tmp'] }]);
  t.equal(templateProblem('{flavor}-{day}.log'), null);
  t.equal(templateProblem('{flavor}.log'), 'must hold {day} exactly once');
  t.equal(templateProblem('{day}-{day}.log'), 'must hold {day} exactly once');
  t.equal(templateProblem('a/{day}.log'), 'must be a file name (no "/")');
  t.equal(templateProblem('{day}-{host}.log'), 'knows only {flavor}, {day} and {instance}');
});
