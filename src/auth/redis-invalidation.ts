import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.ts';
import type { InvalidationEvent, InvalidationTransport } from './invalidation.ts';

/**
 * Carries cache invalidations between gateway instances over Redis pub/sub,
 * so that a key revoked on one instance fails on every instance within a
 * second (in practice within a few milliseconds). A subscriber connection
 * cannot issue other commands, hence its own connection.
 */
export class RedisInvalidationTransport implements InvalidationTransport {
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
  ) {}

  publish(event: InvalidationEvent): void {
    this.publisher.publish(this.channel, JSON.stringify({ ...event, origin: this.origin })).catch((err: unknown) => {
      this.logger.error({ err }, 'could not publish a cache invalidation to other instances');
    });
  }

  subscribe(onRemote: (event: InvalidationEvent) => void): void {
    this.subscriber.subscribe(this.channel).catch((err: unknown) => this.logger.error({ err }, 'could not subscribe to cache invalidations'));
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const event = JSON.parse(message) as InvalidationEvent & { origin?: string };
        if (event.origin === this.origin) return;
        if (event.kind === 'key' && typeof event.hash === 'string') onRemote({ kind: 'key', hash: event.hash });
        else if (event.kind === 'all') onRemote({ kind: 'all' });
      } catch {
        this.logger.warn('ignored a malformed cache invalidation message');
      }
    });
    // After a reconnect, messages published meanwhile were lost: drop everything cached to be safe.
    this.subscriber.on('ready', () => onRemote({ kind: 'all' }));
  }

  async close(): Promise<void> {
    try {
      await this.subscriber.quit();
    } catch {
      this.subscriber.disconnect();
    }
  }
}
