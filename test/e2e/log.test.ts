// The rate-limited error logger: one line per kind and interval, and a
// bounded memory of kinds whatever the callers pass. Journal priorities:
// each line's level as an sd-daemon(3) prefix when stdout is the journal.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { journalPriority, rateLimited } from '../../src/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()));
      cb();
    },
  }));
  return { log, lines };
}

t.test('the same kind logs once per interval, then says how many it suppressed', async (t) => {
  const { log, lines } = capture();
  const limited = rateLimited(log, 50);
  for (let i = 0; i < 100; i++) limited('delivery -195', { n: i }, 'kafka delivery failed');
  await new Promise((r) => setTimeout(r, 80));
  limited('delivery -195', { n: 100 }, 'kafka delivery failed');
  await new Promise((r) => setImmediate(r));
  t.same(lines.map((l) => [l.kind, l.suppressed]), [['delivery -195', 0], ['delivery -195', 99]]);
});

t.test('the memory of kinds is bounded: a flood of distinct kinds keeps at most maxKinds', async (t) => {
  const { log, lines } = capture();
  const limited = rateLimited(log, 60_000, 8);
  for (let i = 0; i < 10_000; i++) limited(`kind ${i % 1000}`, {}, 'x');
  await new Promise((r) => setImmediate(r));
  // Each distinct kind logs when first seen; forgotten kinds with suppressed
  // repeats say so. The bound shows as: kind 0 was forgotten and logs again.
  t.ok(lines.filter((l) => l.kind === 'kind 0' && l.msg === 'x').length > 1, 'kind 0 forgotten and logged again');
});

t.test('journal priorities: each pino level maps to its syslog priority', async (t) => {
  t.same([10, 20, 30, 40, 50, 60].map(journalPriority), [7, 7, 6, 4, 3, 2], 'trace debug info warn error fatal');
});

/** A child process logging one line per level through makeLogger, stdout into a file; the file's lines. */
function logThroughFile(journal: 'match' | 'other' | 'unset'): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'scratchd-log-'));
  try {
    const file = join(dir, 'out');
    writeFileSync(file, '');
    const st = statSync(file, { bigint: true });
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.JOURNAL_STREAM;
    if (journal === 'match') env.JOURNAL_STREAM = `${st.dev}:${st.ino}`;
    if (journal === 'other') env.JOURNAL_STREAM = `${st.dev}:${st.ino + 1n}`;
    const script = `const { makeLogger } = await import(${JSON.stringify(new URL('../../src/log.ts', import.meta.url).href)});
      const log = makeLogger('trace');
      log.trace('t'); log.debug('d'); log.info('i'); log.warn('w'); log.error('e'); log.fatal('f'); log.child({ c: 1 }).error('child');`;
    // tap's flags (its TypeScript loader) let the child import src/ too.
    const fd = openSync(file, 'a');
    try {
      const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { env, stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
    } finally {
      closeSync(fd);
    }
    return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('stdout is the journal (JOURNAL_STREAM names it): every line starts with its priority', async (t) => {
  const lines = logThroughFile('match');
  // Asynchronous writes may land out of order: compare by message.
  const byMsg = Object.fromEntries(lines.map((l) => [JSON.parse(l.slice(l.indexOf('{'))).msg, l.slice(0, l.indexOf('{'))]));
  t.same(byMsg, { t: '<7>', d: '<7>', i: '<6>', w: '<4>', e: '<3>', f: '<2>', child: '<3>' }, 'the priority, then the JSON line as before');
});

t.test('stdout is not the journal (JOURNAL_STREAM unset or another file): plain JSON lines', async (t) => {
  for (const journal of ['unset', 'other'] as const) {
    const lines = logThroughFile(journal);
    t.equal(lines.length, 7, journal);
    t.ok(lines.every((l) => l.startsWith('{')), `${journal}: no prefix`);
  }
});
