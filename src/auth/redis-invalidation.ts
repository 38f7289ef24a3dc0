import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.ts';
import type { InvalidationTransport, NumberedEvent } from './invalidation.ts';

/** Not heard this long after start: the channel is down (before, it is still coming up). */
const START_GRACE_MS = 10_000;

export interface ChannelHealthOptions {
  /** How often this transport pings itself on the channel. */
  pingEveryMs?: number;
  /** The channel is down when no own ping came back for this long. */
  downAfterMs?: number;
  /** Named in the warning: how revocations still arrive while the channel is down. */
  pollMs: number;
}

/**
 * Carries cache invalidations between gateway instances over Redis pub/sub, so that a key revoked on
 * one instance fails on every instance within milliseconds. A subscriber connection cannot issue other
 * commands, hence its own connection.
 *
 * It also knows whether it can hear: it publishes a tiny ping of its own on the channel every
 * `pingEveryMs`, and hears it come back. Its own pings prove the whole path (publish → Redis →
 * subscription), which catches what connection states do not: a subscription not yet renewed after a
 * reconnect, or a network partition that never closes the socket. Without a ping back for
 * `downAfterMs` (or with the subscriber not ready) the channel is down: logged once, shown by /readyz
 * and the gauge, and revocations then reach this isolate through the database poll alone. Messages lost
 * meanwhile need nothing here: every invalidation is in the database's log, committed with its change, and
 * the poll applies what no channel brought. (Dropping the whole cache when the channel came back, as this
 * did before the log, also dropped the entries stale-while-unavailable keeps: a ping missed on a machine
 * busy during a database outage turned every cached key into a 503.)
 */
export class RedisInvalidationTransport implements InvalidationTransport {
  /** This transport's own pings (the other isolate of the instance has the same origin, so not that). */
  private readonly nonce = randomUUID();
  private readonly pingEveryMs: number;
  private readonly downAfterMs: number;
  private readonly startedAt = Date.now();
  private lastTick = Date.now();
  private lastOwnPing = 0;
  /** Whether it was heard up (null: not yet decided, at start). */
  private up: boolean | null = null;
  /** A publish failed and none has succeeded since (see publish). */
  private publishFailing = false;
  private timer: NodeJS.Timeout | null = null;

  /**
   * `origin` names the gateway instance, the same in both of its isolates: each isolate subscribes, and the
   * other isolate already heard of this instance's own invalidations over the BroadcastChannel. Taking the
   * echo from Redis too would empty a cache again milliseconds later, after it had refilled (a cached key
   * then needed a lookup, which a blocked address is refused).
   */
  constructor(
    private readonly origin: string,
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly health: ChannelHealthOptions,
  ) {
    this.pingEveryMs = health.pingEveryMs ?? 250;
    this.downAfterMs = health.downAfterMs ?? 1000;
  }

  publish(event: NumberedEvent): void {
    this.publisher.publish(this.channel, JSON.stringify({ ...event, origin: this.origin })).then(
      () => {
        this.publishFailing = false;
      },
      (err: unknown) => {
        // Once per outage, not per change: the change is in the log, which every instance polls, so a lost
        // message delays it by the poll interval at most; one warning tells the operator as much.
        if (this.publishFailing) return;
        this.publishFailing = true;
        this.logger.warn({ err }, 'could not publish cache invalidations to other instances: they reach them through the database poll');
      },
    );
  }

  subscribe(onRemote: (event: NumberedEvent) => void): void {
    this.subscriber.subscribe(this.channel).catch((err: unknown) => this.logger.error({ err }, 'could not subscribe to cache invalidations'));
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const m = JSON.parse(message) as { kind?: unknown; hash?: unknown; seq?: unknown; origin?: unknown; ping?: unknown };
        if (m.ping !== undefined) {
          if (m.ping === this.nonce) this.heardOwnPing();
          return;
        }
        if (m.origin === this.origin) return;
        const seq = typeof m.seq === 'number' ? { seq: m.seq } : {};
        if (m.kind === 'key' && typeof m.hash === 'string') onRemote({ kind: 'key', hash: m.hash, ...seq });
        else if (m.kind === 'all') onRemote({ kind: 'all', ...seq });
      } catch {
        this.logger.warn('ignored a malformed cache invalidation message');
      }
    });
    this.ping();
    this.timer = setInterval(() => this.tick(), this.pingEveryMs);
    this.timer.unref();
  }

  /** Subscriber ready and its own ping heard lately. */
  hears(): boolean {
    return this.subscriber.status === 'ready' && Date.now() - this.lastOwnPing < this.downAfterMs;
  }

  private heardOwnPing(): void {
    this.lastOwnPing = Date.now();
  }

  private ping(): void {
    // Not queued while disconnected: a late ping proves nothing, and a queue of them fails noisily.
    if (this.publisher.status !== 'ready') return;
    this.publisher.publish(this.channel, JSON.stringify({ ping: this.nonce, origin: this.origin })).catch(() => {});
  }

  private tick(): void {
    const now = Date.now();
    // A tick that comes late found an event loop that was busy: our pings could not have been read either.
    const lagging = now - this.lastTick > 2 * this.pingEveryMs;
    this.lastTick = now;
    this.ping();
    const up = this.hears();
    if (up === this.up || (lagging && !up)) return;
    // At start, not yet heard is not yet down: connecting and subscribing take a moment, longer on a busy machine.
    if (this.up === null && !up && now - this.startedAt < START_GRACE_MS) return;
    const was = this.up;
    this.up = up;
    if (!up) {
      this.logger.warn(`invalidation channel down: revocations reach this instance through the database poll every ${this.health.pollMs} ms`);
    } else if (was === false) {
      this.logger.info('invalidation channel up again: revocations reach this instance over Redis');
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    try {
      await this.subscriber.quit();
    } catch {
      this.subscriber.disconnect();
    }
  }
}
