import type { Logger } from '../log/logger.ts';
import type { CacheInvalidator } from './invalidation.ts';
import type { InvalidationsRepository } from './invalidations.repository.ts';

export interface InvalidationPollerOptions {
  intervalMs: number;
  /** More new events than this in one poll: drop everything instead of reading them all. */
  batch?: number;
  /** Whether this isolate prunes old events (one isolate per instance is enough). */
  prune: boolean;
  /** Events older than this are pruned. */
  keepMs?: number;
  /** How often pruning runs. */
  pruneEveryMs?: number;
  now?: () => number;
}

/**
 * Reads the invalidation log every few hundred milliseconds and applies what no transport brought:
 * the bound on how long a change takes to reach this isolate's caches when Redis is down, an instance
 * could not publish, or the change was made by the CLI. Always on, also while Redis is healthy, since
 * a lost message does not announce itself. Never overlaps itself (a timeout after each poll); a
 * failing poll (database down) is logged once per outage.
 */
export class InvalidationPoller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Whether the mark was set from the log's head (not yet when the database was down at start). */
  private started = false;
  private failing = false;
  private lastSuccess: number;
  private lastPrune: number;
  private readonly batch: number;
  private readonly keepMs: number;
  private readonly pruneEveryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly repo: InvalidationsRepository,
    private readonly invalidator: CacheInvalidator,
    private readonly logger: Logger,
    private readonly options: InvalidationPollerOptions,
  ) {
    this.batch = options.batch ?? 1000;
    this.keepMs = options.keepMs ?? 3_600_000;
    this.pruneEveryMs = options.pruneEveryMs ?? 300_000;
    this.now = options.now ?? Date.now;
    this.lastSuccess = this.now();
    // The first pruning a minute after start, then every pruneEveryMs: instances restarted often still prune.
    this.lastPrune = this.lastSuccess - this.pruneEveryMs + 60_000;
  }

  /**
   * Starts from the log's head: what is already there happened before this isolate's caches. A database
   * that cannot be read now does not fail the start (a restarted management worker must come up during an
   * outage): the first poll that reads it starts from there, dropping whatever was cached meanwhile.
   */
  async start(): Promise<void> {
    try {
      this.invalidator.startAt(await this.repo.head());
      this.started = true;
      this.lastSuccess = this.now();
    } catch (err) {
      this.failing = true;
      this.logger.warn({ err }, 'invalidation log: cannot be read at start; polling until it can');
    }
    this.schedule();
  }

  /** Seconds since the last poll that read the log. */
  ageSeconds(): number {
    return (this.now() - this.lastSuccess) / 1000;
  }

  /** Whether polls have stopped keeping the bound (two intervals missed, and a second of slack for a loaded machine). */
  late(): boolean {
    return this.now() - this.lastSuccess > 2 * this.options.intervalMs + 1000;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.poll().finally(() => {
        this.running = null;
        this.schedule();
      });
    }, this.options.intervalMs);
    // Polling must not keep a finished process (the CLI, a test) alive.
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    try {
      await this.catchUp();
      this.lastSuccess = this.now();
      if (this.failing) this.logger.info('invalidation log: polling works again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn({ err }, 'invalidation log: polling failed; cached identities are not checked against it until it works again');
      this.failing = true;
      return;
    }
    if (this.options.prune && this.now() - this.lastPrune >= this.pruneEveryMs) await this.prune();
  }

  private async catchUp(): Promise<void> {
    const head = await this.repo.head();
    if (!this.started) {
      this.invalidator.resync(head);
      this.started = true;
      return;
    }
    const mark = this.invalidator.mark();
    if (head === mark) return;
    // Behind by more than a batch, or a log that went back (a restored database): everything cached is suspect.
    if (head < mark || head - mark > this.batch) {
      this.invalidator.resync(head);
      return;
    }
    const events = await this.repo.between(mark, head);
    // Numbers are gapless (InvalidationsRepository), so fewer rows than numbers means some were pruned unread.
    if (events.length !== head - mark) this.invalidator.resync(head);
    else this.invalidator.applyLogged(events, head);
  }

  private async prune(): Promise<void> {
    this.lastPrune = this.now();
    try {
      const removed = await this.repo.pruneBefore(new Date(this.now() - this.keepMs).toISOString());
      if (removed) this.logger.debug({ removed }, 'invalidation log: pruned old events');
    } catch (err) {
      this.logger.warn({ err }, 'invalidation log: pruning failed');
    }
  }
}
