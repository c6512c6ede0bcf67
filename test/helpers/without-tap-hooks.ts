// The command line that runs `cmd args` without tap's process-info hooks.
// tap loads them into every Node process a test starts: its spawn hook puts
// them back into NODE_OPTIONS at each spawn, even when the env passed says
// NODE_OPTIONS ''. They are not what production runs, and each process (and
// each of a daemon's serving threads) loads them at start, which more than
// doubles a daemon's start-up CPU. `env -u` drops them after tap's hook, as
// the program starts; `env` then execs it, so the pid is the program's.
export function withoutTapHooks(cmd: string, args: readonly string[]): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', cmd, ...args]];
}
