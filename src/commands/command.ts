/**
 * What every `scratchd NAME` subcommand shares: `--help` prints its usage and
 * exits 0; a bad argument, config or file ends it with one line on stderr and
 * exit 1, never a stack trace.
 */
import { ConfigError } from '../config.js';

/** A one-line reason the command stops; the command prints it and exits 1. */
export class CommandError extends Error {}

/** An error from the system (ENOENT, EACCES, ENOSPC...): its message names the file. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** Run `act` on what `parse` made of the arguments (null: --help). */
export async function runCommand<R>(name: string, usage: string, parse: () => R | null, act: (request: R) => Promise<number>): Promise<number> {
  try {
    const request = parse();
    if (request === null) {
      process.stdout.write(usage);
      return 0;
    }
    return await act(request);
  } catch (err) {
    if (!(err instanceof CommandError || err instanceof ConfigError || isSystemError(err))) throw err;
    process.stderr.write(`scratchd ${name}: ${err.message}\n`);
    return 1;
  }
}
