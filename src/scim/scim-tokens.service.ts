import { randomUUID } from 'node:crypto';
import type { Actor } from '../auth/actor.ts';
import type { Credentials } from '../auth/credentials.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { Store } from '../db/store.ts';
import { AppError, errors } from '../errors/app-error.ts';
import { hashSecret } from '../crypto/tokens.ts';
import { CREDENTIAL_PREFIXES, generateSecretToken, isSecretTokenShape } from '../keys/key-format.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { OrgsRepository } from '../orgs/orgs.repository.ts';
import type { ScimTokenRow, ScimTokensRepository } from './scim-tokens.repository.ts';

export interface ScimTokensRepos {
  scimTokens: ScimTokensRepository;
  orgs: OrgsRepository;
  audit: AuditRepository;
}

export interface ScimTokenView {
  id: string;
  name: string;
  token_id: string;
  created_at: string;
  last_used_at: string | null;
}

/** Who a SCIM request comes from: an organization's IdP, known by the token it presented. */
export interface ScimClient {
  orgId: string;
  orgSlug: string;
  tokenId: string;
  tokenName: string;
  ip: string;
  requestId: string;
}

/** The actor of every SCIM change in the audit log: the IdP, named by its token. */
export function scimAuditActor(client: ScimClient): { type: string; id: string; name: string; ip: string; requestId: string } {
  return { type: 'scim', id: client.tokenId, name: `scim:${client.tokenName}`, ip: client.ip, requestId: client.requestId };
}

/** The token a request presented as its SCIM token (Bearer; an API key's shape is read too, and refused by lookup), or null. */
export function presentedToken(creds: Credentials): string | null {
  return creds.kind === 'bearer_token' ? creds.token : creds.kind === 'api_key' ? creds.key : null;
}

/** The answer to a SCIM request without a usable token (the router's, and the main isolate's before a body is read). */
export function scimTokenRefused(presented: boolean): AppError {
  return new AppError(
    'invalid_scim_token',
    presented ? 'the SCIM token is not valid (unknown, revoked, or not a SCIM token)' : 'send the organization\'s SCIM token as "Authorization: Bearer <token>"',
    { challenge: true },
  );
}

/** Live SCIM tokens an organization may hold: one per IdP and a spare for rotation is plenty. */
export const MAX_SCIM_TOKENS = 5;
/** last_used_at is written at most this often per token (a sync sends many requests in a burst). */
const LAST_USED_EVERY_MS = 60_000;

const view = (r: ScimTokenRow): ScimTokenView => ({ id: r.id, name: r.name, token_id: r.token_id, created_at: r.created_at, last_used_at: r.last_used_at });

/**
 * SCIM tokens: the credential an organization's IdP provisions with. Org admins create (shown once),
 * list and revoke them; the SCIM endpoint authenticates with them. A token names its organization and
 * can do SCIM and nothing else (its prefix is not an API key's, so every other path refuses it by shape).
 * Not cached: a revoked token fails on the next request, on every instance.
 */
export class ScimTokensService {
  private readonly lastWritten = new Map<string, number>();

  constructor(
    private readonly store: Store<ScimTokensRepos>,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
  ) {}

  async list(actor: Actor, slug: string): Promise<ScimTokenView[]> {
    const { org } = await this.access.require(actor, slug, 'admin');
    return (await this.store.repos.scimTokens.listLive(org.id)).map(view);
  }

  async create(actor: Actor, slug: string, name: string): Promise<ScimTokenView & { token: string }> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const generated = generateSecretToken(CREDENTIAL_PREFIXES.scim);
    const row: ScimTokenRow = {
      id: randomUUID(),
      org_id: org.id,
      name,
      token_id: generated.keyId,
      token_hash: generated.hash,
      created_at: new Date().toISOString(),
      created_by: actor.principal.type === 'user' ? actor.principal.id : null,
      last_used_at: null,
      revoked_at: null,
    };
    await this.store.transaction(async (repos) => {
      if ((await repos.scimTokens.countLive(org.id)) >= MAX_SCIM_TOKENS) {
        throw errors.conflict(`${org.slug} already holds ${MAX_SCIM_TOKENS} SCIM tokens; revoke one first`, 'key_limit_reached');
      }
      await repos.scimTokens.insert(row);
      await this.audit.record(repos, actor, { orgId: org.id, action: 'scim.token.create', targetType: 'scim_token', targetId: row.id, targetName: row.name, details: { token_id: row.token_id } });
    });
    return { ...view(row), token: generated.key };
  }

  async revoke(actor: Actor, slug: string, id: string): Promise<void> {
    const { org } = await this.access.require(actor, slug, 'admin');
    await this.store.transaction(async (repos) => {
      const row = await repos.scimTokens.findById(org.id, id);
      if (!row || row.revoked_at !== null || !(await repos.scimTokens.revoke(org.id, id, new Date().toISOString()))) throw errors.notFound(`SCIM token "${id}"`);
      await this.audit.record(repos, actor, { orgId: org.id, action: 'scim.token.revoke', targetType: 'scim_token', targetId: row.id, targetName: row.name, details: { token_id: row.token_id } });
    });
  }

  /** The organization a presented SCIM token speaks for, or null (unknown, revoked, malformed, or its organization gone). */
  async authenticate(token: string, from: { ip: string; requestId: string }): Promise<ScimClient | null> {
    if (!isSecretTokenShape(token, CREDENTIAL_PREFIXES.scim)) return null;
    const repos = this.store.repos;
    const row = await repos.scimTokens.findByHash(hashSecret(token, 'hex'));
    if (!row || row.revoked_at !== null) return null;
    const org = await repos.orgs.findById(row.org_id);
    if (!org) return null;
    const now = Date.now();
    if ((this.lastWritten.get(row.id) ?? 0) + LAST_USED_EVERY_MS <= now) {
      this.lastWritten.set(row.id, now);
      if (this.lastWritten.size > 10_000) this.lastWritten.clear();
      // Not awaited in the request's path: a lost write costs a minute of last-use precision, nothing else.
      repos.scimTokens.touchLastUsed(row.id, new Date(now).toISOString()).catch(() => this.lastWritten.delete(row.id));
    }
    return { orgId: org.id, orgSlug: org.slug, tokenId: row.id, tokenName: row.name, ip: from.ip, requestId: from.requestId };
  }
}
