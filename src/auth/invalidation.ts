/**
 * Tells every cache of identities that something changed. Local listeners run
 * at once; transports carry the change further: Redis pub/sub to the other
 * gateway instances, a BroadcastChannel to the other isolate of this one (the
 * management worker), so that a revocation anywhere reaches every cache.
 */
export type InvalidationEvent = { kind: 'key'; hash: string } | { kind: 'all' };
export type InvalidationListener = (event: InvalidationEvent) => void;

export interface InvalidationTransport {
  publish(event: InvalidationEvent): void;
  subscribe(onRemote: (event: InvalidationEvent) => void): void;
  close(): Promise<void>;
}

export class CacheInvalidator {
  private readonly listeners: InvalidationListener[] = [];
  private readonly transports: InvalidationTransport[] = [];

  onInvalidate(listener: InvalidationListener): void {
    this.listeners.push(listener);
  }

  attach(transport: InvalidationTransport): void {
    this.transports.push(transport);
    transport.subscribe((event) => this.emitLocal(event));
  }

  /** A key was revoked, rotated or deleted. */
  keyChanged(hash: string): void {
    this.emit({ kind: 'key', hash });
  }

  /** Users, roles, teams, memberships or organizations changed: drop every cached identity. */
  identitiesChanged(): void {
    this.emit({ kind: 'all' });
  }

  private emit(event: InvalidationEvent): void {
    this.emitLocal(event);
    for (const t of this.transports) t.publish(event);
  }

  private emitLocal(event: InvalidationEvent): void {
    for (const l of this.listeners) l(event);
  }

  async close(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close()));
  }
}
