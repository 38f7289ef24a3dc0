import type { Logger } from '../log/logger.ts';
import type { KeysRepository } from './keys.repository.ts';

/**
 * Collects "this key was used at T" in memory and writes them in one batch
 * every interval, so the hot path never waits on a database write.
 */
export class LastUsedRecorder {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly repo: KeysRepository,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  record(keyId: string, at: number): void {
    this.pending.set(keyId, at);
  }

  async flush(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const entries = [...batch].map(([id, at]) => ({ id, at: new Date(at).toISOString() }));
    this.flushing = this.repo.touchLastUsed(entries).catch((err: unknown) => {
      // Kept for the next flush (unless a later use replaced them): a database down for a while delays
      // these records, it does not lose them.
      for (const [id, at] of batch) if ((this.pending.get(id) ?? 0) < at) this.pending.set(id, at);
      this.logger.warn({ err, count: entries.length }, 'could not record key last-used times; kept for the next flush');
    });
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
