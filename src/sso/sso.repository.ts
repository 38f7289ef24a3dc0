import type { Kysely, Selectable, Updateable } from 'kysely';
import type { ExternalIdentitiesTable, LoginTransactionsTable, SsoConnectionsTable, SsoTables } from './sso.tables.ts';

export type ConnectionRow = Selectable<SsoConnectionsTable>;
export type IdentityRow = Selectable<ExternalIdentitiesTable>;
export type TransactionRow = Selectable<LoginTransactionsTable>;

/**
 * SSO connections, their domains and linked identities. Every method takes
 * the organization's id, except the two lookups that find the organization in
 * the first place (an email domain, a login transaction's state), which are
 * instance-wide by nature and say so.
 */
export class SsoRepository {
  constructor(private readonly db: Kysely<SsoTables>) {}

  /**
   * Every connection's sealed client secret, across organizations: only for a rotation of the instance's
   * secret key (src/cli/rotate-secret-key.ts), which re-seals what the old key sealed.
   */
  async listSealedClientSecrets(): Promise<Array<{ id: string; sealed: string }>> {
    const rows = await this.db.selectFrom('sso_connections').select(['id', 'client_secret_sealed']).where('client_secret_sealed', 'is not', null).orderBy('id').execute();
    return rows.flatMap((r) => (r.client_secret_sealed === null ? [] : [{ id: r.id, sealed: r.client_secret_sealed }]));
  }

  async setSealedClientSecret(id: string, sealed: string): Promise<void> {
    await this.db.updateTable('sso_connections').set({ client_secret_sealed: sealed }).where('id', '=', id).execute();
  }

  // ---- connections ----
  async insertConnection(row: ConnectionRow): Promise<void> {
    await this.db.insertInto('sso_connections').values(row).execute();
  }

  async findConnection(orgId: string, id: string): Promise<ConnectionRow | undefined> {
    return this.db.selectFrom('sso_connections').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  /** Instance-wide by nature (a SAML connection's SP URLs carry its id only): the connection with this id. */
  async findConnectionById(id: string): Promise<ConnectionRow | undefined> {
    return this.db.selectFrom('sso_connections').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listConnections(orgId: string): Promise<ConnectionRow[]> {
    return this.db.selectFrom('sso_connections').selectAll().where('org_id', '=', orgId).orderBy('created_at').orderBy('id').execute();
  }

  async updateConnection(orgId: string, id: string, patch: Updateable<SsoConnectionsTable>): Promise<void> {
    await this.db.updateTable('sso_connections').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  async deleteConnection(orgId: string, id: string): Promise<void> {
    await this.db.deleteFrom('sso_domains').where('org_id', '=', orgId).where('connection_id', '=', id).execute();
    await this.db.deleteFrom('sso_connections').where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  // ---- domains ----
  async domainsOf(orgId: string, connectionId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('sso_domains').select('domain').where('org_id', '=', orgId).where('connection_id', '=', connectionId).orderBy('domain').execute();
    return rows.map((r) => r.domain);
  }

  async domainsOfOrg(orgId: string): Promise<Array<{ domain: string; connection_id: string }>> {
    return this.db.selectFrom('sso_domains').select(['domain', 'connection_id']).where('org_id', '=', orgId).execute();
  }

  async setDomains(orgId: string, connectionId: string, domains: string[]): Promise<void> {
    await this.db.deleteFrom('sso_domains').where('org_id', '=', orgId).where('connection_id', '=', connectionId).execute();
    if (domains.length) await this.db.insertInto('sso_domains').values(domains.map((domain) => ({ domain, org_id: orgId, connection_id: connectionId }))).execute();
  }

  /** Instance-wide by nature: which organization's connection serves this email domain (home realm discovery). */
  async connectionForDomain(domain: string): Promise<{ org_id: string; connection_id: string } | undefined> {
    return this.db.selectFrom('sso_domains').select(['org_id', 'connection_id']).where('domain', '=', domain).executeTakeFirst();
  }

  /** Takes the connection row's write lock until the transaction ends (first sign-ins run one at a time). */
  async lockConnection(orgId: string, id: string): Promise<void> {
    await this.db.updateTable('sso_connections').set((eb) => ({ updated_at: eb.ref('updated_at') })).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  // ---- identities ----
  async findIdentity(orgId: string, identityKey: string): Promise<IdentityRow | undefined> {
    return this.db.selectFrom('external_identities').selectAll().where('org_id', '=', orgId).where('identity_key', '=', identityKey).executeTakeFirst();
  }

  async insertIdentity(row: IdentityRow): Promise<void> {
    await this.db.insertInto('external_identities').values(row).execute();
  }

  async touchIdentity(orgId: string, id: string, at: string): Promise<void> {
    await this.db.updateTable('external_identities').set({ last_login_at: at }).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  async identitiesOfUser(orgId: string, userId: string): Promise<IdentityRow[]> {
    return this.db.selectFrom('external_identities').selectAll().where('org_id', '=', orgId).where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
  }

  /** Every linked identity of an organization (the admin page's users table). */
  async identitiesOfOrg(orgId: string): Promise<IdentityRow[]> {
    return this.db.selectFrom('external_identities').selectAll().where('org_id', '=', orgId).orderBy('created_at').orderBy('id').execute();
  }

  async deleteIdentity(orgId: string, userId: string, id: string): Promise<IdentityRow | undefined> {
    return this.db.deleteFrom('external_identities').where('org_id', '=', orgId).where('user_id', '=', userId).where('id', '=', id).returningAll().executeTakeFirst();
  }

  // ---- login transactions ----
  async insertTransaction(row: TransactionRow): Promise<void> {
    await this.db.insertInto('login_transactions').values(row).execute();
  }

  /**
   * Instance-wide by nature (the state is all the callback has): takes the
   * transaction out, atomically, so that a state works exactly once even with
   * several gateway instances.
   */
  async takeTransaction(stateHash: string): Promise<TransactionRow | undefined> {
    return this.db.deleteFrom('login_transactions').where('state_hash', '=', stateHash).returningAll().executeTakeFirst();
  }

  /** Keeps the newest `keep` pending attempts of one browser (binding) and deletes the others. */
  async trimTransactionsOfBinding(bindingHash: string, keep: number): Promise<number> {
    const older = await this.db
      .selectFrom('login_transactions')
      .select('state_hash')
      .where('binding_hash', '=', bindingHash)
      .orderBy('created_at', 'desc')
      .orderBy('state_hash')
      .offset(keep)
      .limit(1000)
      .execute();
    if (older.length === 0) return 0;
    const r = await this.db.deleteFrom('login_transactions').where('state_hash', 'in', older.map((o) => o.state_hash)).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async deleteExpiredTransactions(now: string): Promise<number> {
    const r = await this.db.deleteFrom('login_transactions').where('expires_at', '<', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
