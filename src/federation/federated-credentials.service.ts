import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { KeysRepository } from '../keys/keys.repository.ts';
import type { OrgRow } from '../orgs/orgs.repository.ts';
import type { AccessTokensRepository } from './access-tokens.repository.ts';
import type { FederatedCredentialRow, FederatedCredentialsRepository } from './federated-credentials.repository.ts';
import type { federatedCredentialOut } from './federated-credentials.responses.ts';
import { ruleProblems } from './trust-rules.ts';

/** What the trust-rule operations touch, in one transaction with their audit events. */
export interface FederatedCredentialsRepos extends InvalidationRepos {
  federatedCredentials: FederatedCredentialsRepository;
  accessTokens: AccessTokensRepository;
  /** For lockOwner: the account's row lock, under which its rules are counted and deleted (see delete). */
  keys: KeysRepository;
  audit: AuditRepository;
}

/** The API's answer about a trust rule: its response schema's type, so that the two cannot drift. */
export type FederatedCredentialView = z.output<typeof federatedCredentialOut>;

export interface NewFederatedCredentialInput {
  name: string;
  issuer: string;
  /** Default: the organization's slug. */
  audience?: string | undefined;
  subject: string;
  conditions?: Record<string, string> | undefined;
}

/**
 * Who may manage a service account, as the service-accounts folder decides it (ServiceAccountsService.manageable;
 * wired in src/core.ts): declared here so that this folder does not depend on that one, which depends on this
 * one's repositories (deleting an account deletes its rules and revokes its access tokens).
 */
export interface ManageableServiceAccounts {
  /** 404 when the actor may not see the account, 403 when it may not manage it (or, with `enterprise`, the plan does not allow it). */
  manageable(actor: Actor, id: string, options: { enterprise: boolean }): Promise<{ org: OrgRow; sa: ServiceAccountRef }>;
}

interface ServiceAccountRef {
  id: string;
  username: string;
}

/** Rules per service account: a handful covers every real layout (a repository per environment, a cluster or two). */
export const MAX_FEDERATED_CREDENTIALS = 10;

function conditionsOf(row: FederatedCredentialRow): Record<string, string> {
  const parsed: unknown = JSON.parse(row.conditions);
  return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, string>) : {};
}

function view(row: FederatedCredentialRow, sa: ServiceAccountRef): FederatedCredentialView {
  return { id: row.id, name: row.name, issuer: row.issuer, audience: row.audience, subject: row.subject, conditions: conditionsOf(row), service_account: sa.username, created_at: row.created_at };
}

/**
 * Trust rules (federated credentials) of service accounts: which workload tokens (GitHub Actions, a
 * Kubernetes cluster, …) may be exchanged at /oidc/token for the account's access tokens. Who may manage
 * them is who may manage the account (ServiceAccountsService.manageable: org admins, admins of its team);
 * adding one needs the enterprise plan. What a rule may say is src/federation/trust-rules.ts.
 */
export class FederatedCredentialsService {
  constructor(
    private readonly store: Store<FederatedCredentialsRepos>,
    private readonly serviceAccounts: ManageableServiceAccounts,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
    private readonly options: { allowHttpIssuers: boolean },
  ) {}

  async create(actor: Actor, serviceAccountId: string, input: NewFederatedCredentialInput): Promise<FederatedCredentialView> {
    const { org, sa } = await this.serviceAccounts.manageable(actor, serviceAccountId, { enterprise: true });
    const rule = { issuer: input.issuer, audience: input.audience ?? org.slug, subject: input.subject, conditions: input.conditions ?? {} };
    const problems = ruleProblems(rule, { allowHttp: this.options.allowHttpIssuers });
    if (problems.length > 0) {
      throw errors.validation(
        `the trust rule was not saved: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
        problems.map((p) => ({ field: p.field, code: 'trust_rule', message: p.message })),
      );
    }
    const row: FederatedCredentialRow = {
      id: randomUUID(),
      org_id: org.id,
      service_account_id: sa.id,
      name: input.name,
      ...rule,
      conditions: JSON.stringify(rule.conditions),
      created_by: actor.principal.id,
      created_at: new Date().toISOString(),
    };
    await this.store.transaction(async (repos) => {
      // Counted under the account's row lock (as keys are), so that concurrent creations cannot pass the bound
      // together, and a concurrent deletion of the account either precedes (404) or follows (deletes this rule too).
      await repos.keys.lockOwner({ ownerType: 'service_account', ownerId: sa.id });
      if (!(await repos.keys.ownerActive(org.id, { ownerType: 'service_account', ownerId: sa.id }))) throw errors.notFound(`service account "${serviceAccountId}"`);
      if ((await repos.federatedCredentials.countForServiceAccount(org.id, sa.id)) >= MAX_FEDERATED_CREDENTIALS) {
        throw errors.conflict(`service account "${sa.username}" already has ${MAX_FEDERATED_CREDENTIALS} trust rules: delete one first`, 'too_many_federated_credentials');
      }
      await repos.federatedCredentials.insert(row);
      await this.audit.record(repos, actor, {
        orgId: org.id,
        action: 'federated_credential.create',
        targetType: 'federated_credential',
        targetId: row.id,
        targetName: row.name,
        details: { service_account: sa.username, issuer: row.issuer, audience: row.audience, subject: row.subject, conditions: rule.conditions },
      });
    });
    return view(row, sa);
  }

  async list(actor: Actor, serviceAccountId: string): Promise<FederatedCredentialView[]> {
    const { org, sa } = await this.serviceAccounts.manageable(actor, serviceAccountId, { enterprise: false });
    const rows = await this.store.repos.federatedCredentials.listForServiceAccount(org.id, sa.id);
    return rows.map((r) => view(r, sa));
  }

  async get(actor: Actor, serviceAccountId: string, credentialId: string): Promise<FederatedCredentialView> {
    const { org, sa } = await this.serviceAccounts.manageable(actor, serviceAccountId, { enterprise: false });
    const row = await this.store.repos.federatedCredentials.findById(org.id, credentialId);
    // A rule of another account (even of the same organization) is not found under this one.
    if (!row || row.service_account_id !== sa.id) throw errors.notFound(`trust rule "${credentialId}"`);
    return view(row, sa);
  }

  /** Deletes a rule and revokes, at once, every live access token it issued. */
  async delete(actor: Actor, serviceAccountId: string, credentialId: string): Promise<void> {
    const { org, sa } = await this.serviceAccounts.manageable(actor, serviceAccountId, { enterprise: false });
    await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      // The account's row lock, as an exchange takes it before issuing under this rule (TokenExchangeService):
      // an exchange in flight commits first and its token is revoked below, or it waits and finds no rule.
      await repos.keys.lockOwner({ ownerType: 'service_account', ownerId: sa.id });
      const row = await repos.federatedCredentials.findById(org.id, credentialId);
      if (!row || row.service_account_id !== sa.id) throw errors.notFound(`trust rule "${credentialId}"`);
      const revoked = await repos.accessTokens.revokeWhere(org.id, { credentialId: row.id }, new Date().toISOString());
      if (!(await repos.federatedCredentials.delete(org.id, row.id))) throw errors.notFound(`trust rule "${credentialId}"`);
      await this.audit.record(repos, actor, {
        orgId: org.id,
        action: 'federated_credential.delete',
        targetType: 'federated_credential',
        targetId: row.id,
        targetName: row.name,
        details: { service_account: sa.username, issuer: row.issuer, subject: row.subject, tokens_revoked: revoked.length },
      });
      for (const h of revoked) invalidate.key(h);
    });
  }
}
