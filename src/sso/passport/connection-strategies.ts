import { LRUCache } from 'lru-cache';
import type { Strategy } from 'passport-strategy';
import { connectionKind } from '../saml/settings.ts';
import type { Connection } from '../sso.service.ts';
import type { Authenticator } from './authenticator.ts';

/** What a strategy is made from: the connection's id, kind and the version of its settings. */
export interface StrategyConnection {
  id: string;
  kind: string;
  /** Changes whenever the connection's settings change (its updated_at): a new version gets a new strategy. */
  version: string;
}

/** An SSO connection as ConnectionStrategies is given it: the strategy of a version holds that version's settings. */
export interface SsoStrategyConnection extends StrategyConnection {
  connection: Connection;
}

/** The one rule for a connection's strategy name, kind and version, whatever its protocol. */
export function strategyConnection(connection: Connection): SsoStrategyConnection {
  const row = connection.row;
  // updated_at changes with every edit; discovered_at when a login or the admin's test refreshed the IdP's
  // document or metadata (which does not touch updated_at): either one gives the connection a new strategy.
  return { id: row.id, kind: connectionKind(row), version: `${row.updated_at}|${row.discovered_at ?? ''}`, connection };
}

/** Makes the Passport strategy of one connection of a kind (OIDC, SAML). */
export type StrategyFactory<C extends StrategyConnection = StrategyConnection> = (connection: C) => Strategy;

/**
 * How many connections' strategies an instance holds at most. A strategy keeps nothing a login needs (the
 * pending logins are in the shared transaction store), so one dropped here is made again at its next use;
 * the bound keeps connections deleted on another instance, which this one is never told of, from piling up.
 */
const MAX_HELD = 1000;

/**
 * One Passport strategy per SSO connection, named by the connection's id (never by issuer host: every
 * Azure AD tenant shares one). Strategies are made when a login needs one, and made again when the
 * connection's settings changed, so every instance follows a change the next time a login uses the
 * connection, with no message between instances; a deleted or changed connection's strategy is dropped
 * (drop(), replaced on its next use, or the least recently used one beyond the bound).
 */
export class ConnectionStrategies {
  private readonly factories = new Map<string, StrategyFactory>();
  /** By connection id; lru-cache keeps the bound (the least recently used is dropped from Passport too). */
  private readonly held: LRUCache<string, { version: string; strategy: Strategy }>;

  constructor(
    private readonly authenticator: Authenticator,
    maxHeld = MAX_HELD,
  ) {
    this.held = new LRUCache({
      max: maxHeld,
      // Evicted or deleted: Passport forgets the name too. A replaced version ('set') is not: use() has just
      // registered the new strategy under the same name.
      dispose: (_value, connectionId, reason) => {
        if (reason !== 'set') this.authenticator.unuse(ConnectionStrategies.nameOf(connectionId));
      },
    });
  }

  /** Registers how strategies of a kind are made (once per kind, where the feature is wired). */
  registerKind<C extends StrategyConnection>(kind: string, factory: StrategyFactory<C>): void {
    if (this.factories.has(kind)) throw new Error(`a strategy factory for "${kind}" connections is already registered`);
    this.factories.set(kind, factory as StrategyFactory);
  }

  static nameOf(connectionId: string): string {
    return `sso:${connectionId}`;
  }

  /** The strategy name for passport.authenticate(), the strategy made (again) if the connection changed. */
  use(connection: StrategyConnection): string {
    this.strategy(connection);
    return ConnectionStrategies.nameOf(connection.id);
  }

  /** The connection's strategy (made again if the connection changed), registered under its name. */
  strategy(connection: StrategyConnection): Strategy {
    const held = this.held.get(connection.id);
    if (held?.version === connection.version) return held.strategy;
    const factory = this.factories.get(connection.kind);
    if (!factory) throw new Error(`no sign-in strategy for "${connection.kind}" connections`);
    const strategy = factory(connection);
    this.authenticator.use(ConnectionStrategies.nameOf(connection.id), strategy);
    this.held.set(connection.id, { version: connection.version, strategy });
    return strategy;
  }

  /** Forgets a connection's strategy (deleted or disabled on this instance). */
  drop(connectionId: string): void {
    this.held.delete(connectionId);
  }

  /** How many strategies this instance holds. */
  get size(): number {
    return this.held.size;
  }
}
