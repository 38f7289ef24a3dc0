import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * SSO connections of a second kind, SAML 2.0. `kind` says which protocol a connection speaks (every row
 * before this one is OIDC); `saml` holds a SAML connection's settings as JSON (the IdP's entity ID, SSO URL,
 * signing certificates, what must be signed, IdP-initiated login), null on OIDC rows. A SAML row keeps
 * the IdP's entity ID in `issuer` (what identities and the audit name it by); its OIDC-only columns hold
 * neutral values (empty client_id, no scopes, no discovery document).
 */
export function migration013(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sso_connections').addColumn('kind', 'text', (c) => c.notNull().defaultTo('oidc')).execute();
      await db.schema.alterTable('sso_connections').addColumn('saml', 'text').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sso_connections').dropColumn('saml').execute();
      await db.schema.alterTable('sso_connections').dropColumn('kind').execute();
    },
  };
}
