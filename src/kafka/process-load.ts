/**
 * How busy this process has been since the last look, 0..1 (drain-pace.ts's
 * `busyness`): the event loop's utilization, and the CPU time of all its
 * threads per core it may run on. The clock-reading edge of the drain's
 * pace, which itself stays pure.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { busyness } from './drain-pace.js';

export class ProcessLoad {
  private loop = performance.eventLoopUtilization();
  private cpu = process.cpuUsage();
  private at = performance.now();
  /** The cores this process may run on (its CPU affinity). */
  private readonly cores = availableParallelism();

  /** Busyness from the previous call (or construction) to `now` (performance.now()). */
  sinceLast(now: number): number {
    const loop = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const cpuMs = (cpu.user - this.cpu.user + cpu.system - this.cpu.system) / 1000;
    const b = busyness(performance.eventLoopUtilization(loop, this.loop).utilization, cpuMs, now - this.at, this.cores);
    this.loop = loop;
    this.cpu = cpu;
    this.at = now;
    return b;
  }
}
