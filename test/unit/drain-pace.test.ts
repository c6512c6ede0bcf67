// The spool drainer's pace (src/kafka/drain-pace.ts): given the event loop's
// utilization, how much of the thread the drainer may take next, and how long
// it rests after a slice.
import t from 'tap';
import { busyness, DrainPace, nextDuty, PACE_DEFAULTS, restAfter } from '../../src/kafka/drain-pace.js';

const { ceiling, minDuty, maxDuty, periodMs, maxRestMs } = PACE_DEFAULTS;

t.test('a loop busier than the ceiling gives the drainer less, an idler one more', async (t) => {
  t.ok(nextDuty(0.5, 0.95) < 0.5, 'over the ceiling: down');
  t.ok(nextDuty(0.5, 0.3) > 0.5, 'under it: up');
  t.equal(nextDuty(0.5, ceiling), 0.5, 'at it: unchanged');
  t.equal(nextDuty(0.5, 1), 0.5 - (1 - ceiling) / 2, 'half the gap per decision');
});

t.test('the drainer keeps its floor under sustained maximum load, and its cap when idle', async (t) => {
  let duty = 0.5;
  for (let i = 0; i < 100; i++) duty = nextDuty(duty, 1);
  t.equal(duty, minDuty, 'a saturated loop leaves the drainer its floor, never nothing');
  t.ok(restAfter(2, duty) < Infinity && restAfter(2, duty) > 0, 'it still drains: a finite rest after each slice');
  for (let i = 0; i < 100; i++) duty = nextDuty(duty, 0);
  t.equal(duty, maxDuty, 'an idle loop lets it drain at its cap');
});

t.test('the rest gives the slices their duty of the wall time', async (t) => {
  t.equal(restAfter(4, 0.5), 4, 'half: rest as long as the slice took');
  t.equal(restAfter(1, 0.9), (1 - 0.9) / 0.9, 'idle: short rests');
  t.equal(restAfter(5, minDuty), Math.min(maxRestMs, 5 * (1 - minDuty) / minDuty), 'floor: long rests');
  t.equal(restAfter(1000, minDuty), maxRestMs, 'never longer than maxRestMs');
  t.equal(restAfter(-1, 0.5), 0, 'a clock step backwards rests nothing extra');
});

t.test('it settles where the request path plus the drainer meet the ceiling', async (t) => {
  // A model loop: requests take 0.5 of it, and the drainer's real cost is
  // 2.5x what its slices show (delivery reports, reads): utilization =
  // 0.5 + 2.5 × duty. The ceiling is met at duty = 0.12.
  let duty = 0.5;
  const seen: number[] = [];
  for (let i = 0; i < 40; i++) {
    duty = nextDuty(duty, Math.min(1, 0.5 + 2.5 * duty));
    seen.push(duty);
  }
  t.ok(Math.abs(duty - 0.12) < 0.005, `converges to 0.12 (got ${duty})`);
  const late = seen.slice(20);
  t.ok(Math.max(...late) - Math.min(...late) < 0.01, 'and stays there, no oscillation');
});

t.test('DrainPace decides at most once a period, from the utilization given at a decision', async (t) => {
  const pace = new DrainPace();
  t.equal(pace.duty, 0.5, 'starts at half the thread');
  t.ok(pace.due(0), 'the first step is a decision');
  t.equal(pace.step(0, 1, 2), 2, 'the first decision only starts the clock: no window before it');
  t.equal(pace.duty, 0.5);
  t.notOk(pace.due(periodMs - 1), 'not due within the period');
  pace.step(periodMs - 1, 1, 2);
  t.equal(pace.duty, 0.5, 'a step between decisions keeps the duty');
  t.ok(pace.due(periodMs));
  pace.step(periodMs, 1, 2);
  t.equal(pace.duty, nextDuty(0.5, 1), 'a decision applies the utilization');
  pace.step(2 * periodMs, null, 2);
  t.equal(pace.duty, nextDuty(0.5, 1), 'no utilization: no change');
});

t.test('busyness: the loop, or the whole process on the cores it may use, whichever is busier', async (t) => {
  t.equal(busyness(0.3, 50, 100, 1), 0.5, 'one core: librdkafka\'s and the pool\'s threads count, unseen by the loop');
  t.equal(busyness(0.3, 50, 100, 4), 0.3, 'four cores: the loop is the busier');
  t.equal(busyness(0.9, 300, 100, 1), 1, 'never above 1');
  t.equal(busyness(0.4, 10, 0, 1), 0.4, 'no wall time: the loop alone');
});
