/**
 * For the recovery tests: run `scratchd replay|rebuild` as an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { mainJs, root } from './daemon.js';
import { withoutTapHooks } from './without-tap-hooks.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  readonly proc: ChildProcess;
  readonly done: Promise<CliResult>;
}

/**
 * `timeoutMs`: SIGKILL it then (a command that never ends fails its test
 * instead of hanging the suite). `clock`: its Date.now() starts there
 * (test/helpers/clock.mjs).
 */
export function startCli(args: string[], timeoutMs = 180_000, clock?: number): Cli {
  const preload = clock === undefined ? [] : ['--import', join(root, 'test/helpers/clock.mjs')];
  const proc = spawn(...withoutTapHooks(process.execPath, [...preload, mainJs, ...args]), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SCRATCHD_TEST_CLOCK: clock === undefined ? '' : String(clock) },
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const done = new Promise<CliResult>((resolve) => proc.on('close', (code, signal) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr: signal === 'SIGKILL' ? `${stderr}(killed after ${timeoutMs} ms)\n` : stderr });
  }));
  return { proc, done };
}

export const cli = (args: string[], timeoutMs?: number, clock?: number): Promise<CliResult> => startCli(args, timeoutMs, clock).done;
