import { existsSync, promises as fs } from 'node:fs';
import type { Logger } from '../log.js';
import type { rateLimited } from '../log.js';
import { compressDay } from './compress-day.js';
import { readManifest } from './manifest.js';
import type { DayPaths } from './paths.js';

/**
 * Compresses sealed days one at a time, in the background: a queue and a
 * single worker, so compression never takes more than one pool thread and one
 * file's worth of buffers. Stopped at shutdown: the compression under way is
 * abandoned (its temp file removed) and done again by the next run.
 */
export class Compressor {
  private readonly queue: DayPaths[] = [];
  private current: string | null = null;
  private running: Promise<void> | null = null;
  private readonly abort = new AbortController();

  constructor(
    private readonly log: Logger,
    private readonly logError: ReturnType<typeof rateLimited>,
    private readonly compressed: () => void,
  ) {}

  /** Is this day file being compressed, or waiting to be? (A pass leaves it alone meanwhile.) */
  busyWith(log: string): boolean {
    return this.current === log || this.queue.some((p) => p.log === log);
  }

  enqueue(paths: DayPaths): void {
    if (this.abort.signal.aborted || this.busyWith(paths.log)) return;
    this.queue.push(paths);
    this.running ??= this.work().finally(() => {
      this.running = null;
    });
  }

  stop(): void {
    this.queue.length = 0;
    this.abort.abort();
  }

  async stopped(): Promise<void> {
    await this.running;
  }

  private async work(): Promise<void> {
    for (let paths = this.queue.shift(); paths !== undefined && !this.abort.signal.aborted; paths = this.queue.shift()) {
      this.current = paths.log;
      try {
        await this.one(paths);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (this.abort.signal.aborted) this.log.info({ file: paths.log }, 'compression abandoned at shutdown');
        else this.logError(`compress ${e.code ?? 'error'}`, { file: paths.log, err: e.message }, 'compression failed; trying again later');
      } finally {
        this.current = null;
      }
    }
  }

  private async one(paths: DayPaths): Promise<void> {
    const manifest = await readManifest(paths.done);
    if (manifest === null || !existsSync(paths.log)) return;
    if (manifest.compressed !== undefined && existsSync(paths.gz)) {
      // Crashed after the manifest named the .gz, before the plain file went.
      await fs.rm(paths.log, { force: true });
      this.log.info({ file: paths.log, gz: paths.gz }, 'removed the plain file of a compressed day');
      return;
    }
    // A .gz the manifest does not name is from a compression cut short after its rename: do it again.
    await fs.rm(paths.gz, { force: true });
    await fs.rm(paths.gzTemp, { force: true });
    const { bytes } = (await compressDay(paths, this.abort.signal))!;
    this.compressed();
    this.log.info({ file: paths.gz, bytes, plainBytes: manifest.bytes }, 'compressed day');
  }
}
