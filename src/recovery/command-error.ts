/** A one-line reason a recovery command stops; the command prints it and exits 1. */
export class CommandError extends Error {}

/** An error from the system (ENOENT, EACCES, ENOSPC...): its message names the file. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
