import type { Store } from '../db/store.ts';
import type { InvalidationsRepository, LoggedInvalidation } from './invalidations.repository.ts';

/**
 * Tells every cache of identities that something changed. Each change is written to the database's
 * invalidation log in the transaction that makes it, then, once committed, announced: local listeners
 * run at once, and transports carry it further (Redis pub/sub to the other gateway instances, a
 * BroadcastChannel to the other isolate of this one), so that a revocation anywhere reaches every cache
 * in milliseconds. Every isolate also polls the log (InvalidationPoller): whatever a transport lost
 * (Redis down, a partition, a change made by the CLI) arrives within the poll interval.
 */
export type InvalidationEvent = { kind: 'key'; hash: string } | { kind: 'all' };
/** An event as it travels: with its number in the log, so that the poller can skip what a transport already brought. */
export type NumberedEvent = InvalidationEvent & { seq?: number };
export type InvalidationListener = (event: InvalidationEvent) => void;

export interface InvalidationTransport {
  publish(event: NumberedEvent): void;
  subscribe(onRemote: (event: NumberedEvent) => void): void;
  /** Whether this transport can hear the others now; absent for a transport that cannot fail unnoticed. */
  hears?(): boolean;
  close(): Promise<void>;
}

export interface InvalidationRepos {
  invalidations: InvalidationsRepository;
}

/** Given to a transaction's body: notes what the change makes stale, written to the log as the transaction's last statement. */
export interface Invalidate {
  /** A key was revoked, rotated or deleted. */
  key(hash: string): void;
  /** Users, roles, teams, memberships or organizations changed: drop every cached identity. */
  all(): void;
}

/** More keys than this in one change are logged as one 'all' (a service account with many keys). */
const MAX_KEY_EVENTS = 100;
/** Numbers applied ahead of the poller; past this many (a poller failing for long) they are forgotten: at worst an event is applied twice. */
const MAX_APPLIED_AHEAD = 10_000;

export class CacheInvalidator {
  private readonly listeners: InvalidationListener[] = [];
  private readonly transports: InvalidationTransport[] = [];
  /** Every event numbered up to this was applied here (the poller's mark). */
  private polled = 0;
  /** Numbers above `polled` already applied (announced here or brought by a transport): the poller skips them. */
  private readonly applied = new Set<number>();

  onInvalidate(listener: InvalidationListener): void {
    this.listeners.push(listener);
  }

  attach(transport: InvalidationTransport): void {
    this.transports.push(transport);
    transport.subscribe((event) => this.receive(event));
  }

  /**
   * The one way to change what a cached identity depends on: runs `fn` in a transaction of `store`,
   * appends what it noted through `invalidate` to the log as the transaction's last statement (see
   * InvalidationsRepository.append), and once committed announces it here and on every transport.
   */
  async transaction<R extends InvalidationRepos, T>(store: Store<R>, fn: (repos: R, invalidate: Invalidate) => Promise<T>): Promise<T> {
    const noted: InvalidationEvent[] = [];
    const invalidate: Invalidate = {
      key: (hash) => void noted.push({ kind: 'key', hash }),
      all: () => void noted.push({ kind: 'all' }),
    };
    let events: InvalidationEvent[] = [];
    let last = 0;
    const result = await store.transaction(async (repos) => {
      const value = await fn(repos, invalidate);
      events = condense(noted);
      if (events.length) last = await repos.invalidations.append(events.map(toRow), new Date().toISOString());
      return value;
    });
    const first = last - events.length + 1;
    events.forEach((event, i) => this.announce({ ...event, seq: first + i }));
    return result;
  }

  /** 'none' without a transport that can fail unnoticed (no Redis); else whether every such transport hears. */
  channel(): 'up' | 'down' | 'none' {
    let state: 'up' | 'down' | 'none' = 'none';
    for (const t of this.transports) {
      if (!t.hears) continue;
      if (!t.hears()) return 'down';
      state = 'up';
    }
    return state;
  }

  /** The poller's mark: every event numbered up to it was applied here. */
  mark(): number {
    return this.polled;
  }

  /** The poller starts here: what is already in the log was before this isolate's caches. */
  startAt(seq: number): void {
    this.polled = seq;
    this.applied.clear();
  }

  /** The log's events after the poller's mark, up to `head`: applies those no transport brought, then moves the mark. */
  applyLogged(events: LoggedInvalidation[], head: number): void {
    const fresh = events.filter((e) => !this.applied.has(e.seq));
    if (fresh.some((e) => e.kind === 'all')) this.emitLocal({ kind: 'all' });
    else for (const e of fresh) if (e.keyHash !== null) this.emitLocal({ kind: 'key', hash: e.keyHash });
    this.advance(head);
  }

  /** The log cannot tell what changed (too far behind, pruned, or restored to an earlier point): drop everything. */
  resync(head: number): void {
    this.emitLocal({ kind: 'all' });
    this.polled = head;
    this.applied.clear();
  }

  private advance(head: number): void {
    this.polled = head;
    for (const seq of this.applied) if (seq <= head) this.applied.delete(seq);
  }

  private announce(event: NumberedEvent): void {
    this.receive(event);
    for (const t of this.transports) t.publish(event);
  }

  private receive(event: NumberedEvent): void {
    const { seq } = event;
    if (seq !== undefined) {
      // The poller (or an earlier message) applied it already: applying it again would empty a cache that has refilled.
      if (seq <= this.polled || this.applied.has(seq)) return;
      if (this.applied.size >= MAX_APPLIED_AHEAD) this.applied.clear();
      this.applied.add(seq);
    }
    this.emitLocal(event.kind === 'key' ? { kind: 'key', hash: event.hash } : { kind: 'all' });
  }

  private emitLocal(event: InvalidationEvent): void {
    for (const l of this.listeners) l(event);
  }

  async close(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

/** One 'all' stands for everything; keys once each, and past a bound one 'all'. */
function condense(noted: InvalidationEvent[]): InvalidationEvent[] {
  if (noted.length === 0) return [];
  const hashes = new Set<string>();
  for (const e of noted) {
    if (e.kind === 'all') return [{ kind: 'all' }];
    hashes.add(e.hash);
  }
  if (hashes.size > MAX_KEY_EVENTS) return [{ kind: 'all' }];
  return [...hashes].map((hash) => ({ kind: 'key', hash }));
}

function toRow(e: InvalidationEvent): { kind: 'key' | 'all'; keyHash: string | null } {
  return e.kind === 'key' ? { kind: 'key', keyHash: e.hash } : { kind: 'all', keyHash: null };
}
