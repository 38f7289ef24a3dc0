import type { Strategy } from 'passport-strategy';
import type { Authenticator } from './authenticator.ts';

/** What a strategy is made from: the connection's id, kind and the version of its settings. */
export interface StrategyConnection {
  id: string;
  kind: string;
  /** Changes whenever the connection's settings change (its updated_at): a new version gets a new strategy. */
  version: string;
}

/** Makes the Passport strategy of one connection of a kind (OIDC, SAML). */
export type StrategyFactory<C extends StrategyConnection = StrategyConnection> = (connection: C) => Strategy;

/**
 * One Passport strategy per SSO connection, named by the connection's id (never by issuer host: every
 * Azure AD tenant shares one). Strategies are made when a login needs one, and made again when the
 * connection's settings changed, so every instance follows a change the next time a login uses the
 * connection, with no message between instances; a deleted or changed connection's strategy is dropped
 * (drop(), or replaced on its next use).
 */
export class ConnectionStrategies {
  private readonly factories = new Map<string, StrategyFactory>();
  private readonly versions = new Map<string, string>();

  constructor(private readonly authenticator: Authenticator) {}

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
    const name = ConnectionStrategies.nameOf(connection.id);
    if (this.versions.get(connection.id) === connection.version) return name;
    const factory = this.factories.get(connection.kind);
    if (!factory) throw new Error(`no sign-in strategy for "${connection.kind}" connections`);
    const strategy = factory(connection);
    this.authenticator.use(name, strategy);
    this.versions.set(connection.id, connection.version);
    return name;
  }

  /** Forgets a connection's strategy (deleted or disabled on this instance). */
  drop(connectionId: string): void {
    if (!this.versions.delete(connectionId)) return;
    this.authenticator.unuse(ConnectionStrategies.nameOf(connectionId));
  }

  /** How many strategies this instance holds (for tests and metrics). */
  get size(): number {
    return this.versions.size;
  }
}
