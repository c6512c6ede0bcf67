// SIGSTOP that returns once the process is stopped. kill() only marks the
// signal pending: the kernel stops a process's threads once one of them
// takes the signal, when it next runs. On a loaded machine that can be many
// milliseconds later, and until then the other threads (a daemon's serving
// threads) go on answering.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { until } from './wait.js';

/** The state letter of each thread of `pid` ("T": stopped); a thread that ended meanwhile is left out. */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // "tid (comm) S ...": comm may hold spaces and parentheses, the state follows its last ")".
      return [stat.charAt(stat.lastIndexOf(')') + 2)];
    } catch {
      return [];
    }
  });
}

/** SIGSTOP `proc`, and resolve when every one of its threads is stopped. */
export async function stopProcess(proc: ChildProcess): Promise<void> {
  proc.kill('SIGSTOP');
  await until(`process ${proc.pid} to be stopped`, () => threadStates(proc.pid!).every((s) => s === 'T'));
}
