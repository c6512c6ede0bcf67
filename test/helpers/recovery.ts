/**
 * For the recovery tests: run `scratchd replay|rebuild` as an operator would,
 * and give a day file the sparse index the file backend writes beside it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { encodeEntries, type IndexEntry } from '../../src/file/day-index.js';
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

/**
 * The index of a day file whose Lines carry their arrival time in the Values
 * field `field` (the `time` enrichment): one entry per Line, as if each Line
 * had been a write batch of its own; the format is helpers-interfaces.md's.
 */
export function indexFromTimes(file: string, field = 't'): IndexEntry[] {
  const data = readFileSync(file);
  const entries: IndexEntry[] = [];
  let offset = 0;
  for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, offset)) {
    const values = JSON.parse(data.subarray(offset, nl).toString()) as Record<string, string>;
    entries.push({ time: Date.parse(values[field]!), offset });
    offset = nl + 1;
  }
  writeFileSync(`${file}.idx`, encodeEntries(entries));
  return entries;
}
