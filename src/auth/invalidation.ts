/**
 * Tells every cache of identities that something changed. Local listeners run
 * at once; a cross-instance transport (Redis pub/sub) can be attached so that
 * a revocation on one gateway instance reaches all of them.
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
  private transport: InvalidationTransport | null = null;

  onInvalidate(listener: InvalidationListener): void {
    this.listeners.push(listener);
  }

  attach(transport: InvalidationTransport): void {
    this.transport = transport;
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
    this.transport?.publish(event);
  }

  private emitLocal(event: InvalidationEvent): void {
    for (const l of this.listeners) l(event);
  }

  async close(): Promise<void> {
    await this.transport?.close();
  }
}
