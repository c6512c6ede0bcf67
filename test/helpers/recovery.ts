/**
 * For the recovery tests: run `scratchd replay|rebuild` as an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mainJs } from './daemon.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  readonly proc: ChildProcess;
  readonly done: Promise<CliResult>;
}

export function startCli(args: string[]): Cli {
  const proc = spawn(process.execPath, [mainJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const done = new Promise<CliResult>((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr })));
  return { proc, done };
}

export const cli = (args: string[]): Promise<CliResult> => startCli(args).done;
