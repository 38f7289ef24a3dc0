import type { Kysely, Selectable } from 'kysely';
import type { FederatedCredentialsTable, FederationTables } from './federation.tables.ts';

export type FederatedCredentialRow = Selectable<FederatedCredentialsTable>;

/**
 * Storage of trust rules (federated credentials). Scoped to an organization, except findByIssuer: an
 * exchange at /oidc/token names no organization, and the assertion's issuer is what finds its candidates
 * (the audience and subject then decide; see src/federation/trust-rules.ts).
 */
export class FederatedCredentialsRepository {
  constructor(private readonly db: Kysely<FederationTables>) {}

  async insert(row: FederatedCredentialRow): Promise<void> {
    await this.db.insertInto('federated_credentials').values(row).execute();
  }

  async findById(orgId: string, id: string): Promise<FederatedCredentialRow | undefined> {
    return this.db.selectFrom('federated_credentials').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  /** A service account's rules, oldest first (an account holds a handful; the service bounds how many). */
  async listForServiceAccount(orgId: string, serviceAccountId: string): Promise<FederatedCredentialRow[]> {
    return this.db
      .selectFrom('federated_credentials')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('service_account_id', '=', serviceAccountId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  async countForServiceAccount(orgId: string, serviceAccountId: string): Promise<number> {
    const r = await this.db
      .selectFrom('federated_credentials')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('org_id', '=', orgId)
      .where('service_account_id', '=', serviceAccountId)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /**
   * The rules trusting this issuer for one of these audiences, across organizations: the candidates of one
   * exchange (bounded by the caller). By audience too, so that the rules of a shared issuer (every GitHub user's
   * organization trusts the same one) do not crowd one another out of the bound.
   */
  async findByIssuer(issuer: string, audiences: readonly string[], limit: number): Promise<FederatedCredentialRow[]> {
    if (audiences.length === 0) return [];
    return this.db.selectFrom('federated_credentials').selectAll().where('issuer', '=', issuer).where('audience', 'in', audiences).orderBy('created_at').orderBy('id').limit(limit).execute();
  }

  /** Whether an organization has a rule for this issuer (whose admins see the refused exchanges naming it). */
  async orgTrustsIssuer(orgId: string, issuer: string): Promise<boolean> {
    return (await this.db.selectFrom('federated_credentials').select('id').where('org_id', '=', orgId).where('issuer', '=', issuer).limit(1).executeTakeFirst()) !== undefined;
  }

  async delete(orgId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('federated_credentials').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async deleteForServiceAccount(orgId: string, serviceAccountId: string): Promise<number> {
    const r = await this.db.deleteFrom('federated_credentials').where('org_id', '=', orgId).where('service_account_id', '=', serviceAccountId).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
