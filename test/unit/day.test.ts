// Calendar days by Intl: midnight and DST transitions in the three zones we serve.
import t from 'tap';
import { dayClock, dayOf, isoTime } from '../../src/day.js';

const at = (iso: string) => Date.parse(iso);

t.test('midnight, per zone', async (t) => {
  // Athens is UTC+2 in winter, Istanbul UTC+3 all year, London UTC+0 in winter.
  t.equal(dayOf(at('2026-01-14T21:59:59.999Z'), 'Europe/Athens'), '2026-01-14');
  t.equal(dayOf(at('2026-01-14T22:00:00.000Z'), 'Europe/Athens'), '2026-01-15');
  t.equal(dayOf(at('2026-01-14T20:59:59.999Z'), 'Europe/Istanbul'), '2026-01-14');
  t.equal(dayOf(at('2026-01-14T21:00:00.000Z'), 'Europe/Istanbul'), '2026-01-15');
  t.equal(dayOf(at('2026-01-14T23:59:59.999Z'), 'Europe/London'), '2026-01-14');
  t.equal(dayOf(at('2026-01-15T00:00:00.000Z'), 'Europe/London'), '2026-01-15');
  t.equal(dayOf(at('2026-12-31T22:00:00.000Z'), 'Europe/Athens'), '2027-01-01', 'new year');
});

t.test('summer time: midnight moves with the offset', async (t) => {
  // Athens UTC+3 and London UTC+1 in summer; Istanbul has no DST.
  t.equal(dayOf(at('2026-07-01T20:59:59.999Z'), 'Europe/Athens'), '2026-07-01');
  t.equal(dayOf(at('2026-07-01T21:00:00.000Z'), 'Europe/Athens'), '2026-07-02');
  t.equal(dayOf(at('2026-07-01T22:59:59.999Z'), 'Europe/London'), '2026-07-01');
  t.equal(dayOf(at('2026-07-01T23:00:00.000Z'), 'Europe/London'), '2026-07-02');
  t.equal(dayOf(at('2026-07-01T21:00:00.000Z'), 'Europe/Istanbul'), '2026-07-02');
});

t.test('the nights the clocks change (EU: last Sunday of March and of October, 01:00 UTC)', async (t) => {
  // 2026-03-29 01:00Z: Athens 03:00→04:00, London 01:00→02:00; the day does not change.
  t.equal(isoTime(at('2026-03-29T00:59:59.999Z'), 'Europe/Athens'), '2026-03-29T02:59:59.999+02:00');
  t.equal(isoTime(at('2026-03-29T01:00:00.000Z'), 'Europe/Athens'), '2026-03-29T04:00:00.000+03:00');
  t.equal(isoTime(at('2026-03-29T01:00:00.000Z'), 'Europe/London'), '2026-03-29T02:00:00.000+01:00');
  t.equal(dayOf(at('2026-03-29T01:00:00.000Z'), 'Europe/London'), '2026-03-29');
  // The next midnight in Athens is already at summer offset.
  t.equal(dayOf(at('2026-03-29T20:59:59.999Z'), 'Europe/Athens'), '2026-03-29');
  t.equal(dayOf(at('2026-03-29T21:00:00.000Z'), 'Europe/Athens'), '2026-03-30');
  // 2026-10-25 01:00Z: back to winter time; the hour repeats, the day stays.
  t.equal(isoTime(at('2026-10-25T00:30:00.000Z'), 'Europe/Athens'), '2026-10-25T03:30:00.000+03:00');
  t.equal(isoTime(at('2026-10-25T01:30:00.000Z'), 'Europe/Athens'), '2026-10-25T03:30:00.000+02:00');
  t.equal(isoTime(at('2026-10-25T00:30:00.000Z'), 'Europe/London'), '2026-10-25T01:30:00.000+01:00');
  t.equal(isoTime(at('2026-10-25T01:30:00.000Z'), 'Europe/London'), '2026-10-25T01:30:00.000+00:00');
  t.equal(dayOf(at('2026-10-25T21:59:59.999Z'), 'Europe/Athens'), '2026-10-25');
  t.equal(dayOf(at('2026-10-25T22:00:00.000Z'), 'Europe/Athens'), '2026-10-26');
  t.equal(dayOf(at('2026-10-25T23:59:59.999Z'), 'Europe/London'), '2026-10-25');
  t.equal(dayOf(at('2026-10-26T00:00:00.000Z'), 'Europe/London'), '2026-10-26');
  t.equal(isoTime(at('2026-10-25T21:00:00.000Z'), 'Europe/Istanbul'), '2026-10-26T00:00:00.000+03:00');
});

t.test('dayClock caches per minute and still turns at midnight', async (t) => {
  const day = dayClock('Europe/Athens');
  t.equal(day(at('2026-01-14T21:59:00.000Z')), '2026-01-14');
  t.equal(day(at('2026-01-14T21:59:59.999Z')), '2026-01-14');
  t.equal(day(at('2026-01-14T22:00:00.000Z')), '2026-01-15');
  t.equal(day(at('2026-01-14T21:59:30.000Z')), '2026-01-14', 'going back in time works too');
});

t.test('dayClock: half-hour and 45-minute zones turn the day at their own midnight, to the minute', async (t) => {
  // Asia/Kolkata is UTC+5:30: midnight is 18:30 UTC. Asia/Kathmandu is UTC+5:45: 18:15 UTC.
  const kolkata = dayClock('Asia/Kolkata');
  t.equal(kolkata(at('2026-01-14T18:00:00.000Z')), '2026-01-14', 'Kolkata 23:30');
  t.equal(kolkata(at('2026-01-14T18:29:59.999Z')), '2026-01-14', 'Kolkata 23:59:59.999');
  t.equal(kolkata(at('2026-01-14T18:30:00.000Z')), '2026-01-15', 'Kolkata 00:00');
  t.equal(kolkata(at('2026-01-14T18:59:00.000Z')), '2026-01-15');
  const kathmandu = dayClock('Asia/Kathmandu');
  t.equal(kathmandu(at('2026-01-14T18:00:00.000Z')), '2026-01-14', 'Kathmandu 23:45');
  t.equal(kathmandu(at('2026-01-14T18:14:59.999Z')), '2026-01-14', 'Kathmandu 23:59:59.999');
  t.equal(kathmandu(at('2026-01-14T18:15:00.000Z')), '2026-01-15', 'Kathmandu 00:00');
  t.equal(kathmandu(at('2026-01-14T18:16:00.000Z')), '2026-01-15');
});
