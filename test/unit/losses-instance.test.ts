// A loss window names the instance that lost the Lines (issue 27): in
// losses.jsonl, the log line and /stats' snapshot, so windows of several
// instances side by side are told apart.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { LossTracker, readLossWindows } from '../../src/losses.js';

t.test('a loss window carries the instance', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'losses-instance-'));
  const logged: { lossWindow?: { instance?: string } }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { logged.push(JSON.parse(s)); } });
  const tracker = new LossTracker({ stateDir, configFile: '/c.json', instance: 'edge-a', log, timeZones: new Map([['gr', 'UTC']]) });
  tracker.listener('kafka', 'gr', Date.parse('2026-11-30T10:00:00.000Z'), 'queue_full');
  t.equal(tracker.snapshot().open[0]!.instance, 'edge-a', 'an open window, as /stats shows it');
  tracker.closeAll();
  t.same(readLossWindows(stateDir).map((w) => w.instance), ['edge-a'], 'losses.jsonl');
  t.same(logged.filter((l) => l.lossWindow !== undefined).map((l) => l.lossWindow!.instance), ['edge-a'], 'the log line');
});
