import { BroadcastChannel } from 'node:worker_threads';
import type { InvalidationTransport, NumberedEvent } from './invalidation.ts';

/**
 * Carries cache invalidations between the isolates of one gateway process (the
 * hot paths in the main thread, the management API in its worker). A
 * BroadcastChannel delivers to every other channel of the same name in the
 * process and never back to its sender; the name is unique per gateway
 * instance, so two instances in one process (tests) stay apart.
 */
export class ThreadInvalidationTransport implements InvalidationTransport {
  private readonly channel: BroadcastChannel;

  constructor(name: string) {
    this.channel = new BroadcastChannel(name);
    // Listening must not keep a finished process (or worker) alive.
    this.channel.unref();
  }

  publish(event: NumberedEvent): void {
    this.channel.postMessage(event);
  }

  subscribe(onRemote: (event: NumberedEvent) => void): void {
    this.channel.onmessage = (message: unknown) => {
      const event = (message as { data?: unknown }).data as { kind?: unknown; hash?: unknown; seq?: unknown } | undefined;
      const seq = typeof event?.seq === 'number' ? { seq: event.seq } : {};
      if (event?.kind === 'key' && typeof event.hash === 'string') onRemote({ kind: 'key', hash: event.hash, ...seq });
      else if (event?.kind === 'all') onRemote({ kind: 'all', ...seq });
    };
  }

  close(): Promise<void> {
    this.channel.close();
    return Promise.resolve();
  }
}
