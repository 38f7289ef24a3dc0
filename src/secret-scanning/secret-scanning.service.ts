import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { hashSecret } from '../crypto/tokens.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { AppError } from '../errors/app-error.ts';
import type { AccessTokenRow, AccessTokensRepository } from '../federation/access-tokens.repository.ts';
import { CREDENTIAL_PREFIXES, KEY_PREFIXES, isSecretTokenShape } from '../keys/key-format.ts';
import type { ApiKeyRow, KeysRepository } from '../keys/keys.repository.ts';
import type { Logger } from '../log/logger.ts';
import type { ScimTokenRow, ScimTokensRepository } from '../scim/scim-tokens.repository.ts';
import type { ServiceAccountsRepository } from '../service-accounts/service-accounts.repository.ts';
import type { UsersRepository } from '../users/users.repository.ts';
import type { LeakedCredentialNoticeRow, LeakedCredentialsRepository } from './leaked-credentials.repository.ts';
import type { leakedCredentialOut, reportResultOut } from './secret-scanning.responses.ts';
import { ScannerKeys } from './scanner-keys.ts';
import type { ScannerKeysFetcher } from './scanner-keys.ts';

/** What a report touches: the three kinds of credential, their owners' names, the notices, the audit. */
export interface SecretScanningRepos extends InvalidationRepos {
  keys: KeysRepository;
  accessTokens: AccessTokensRepository;
  scimTokens: ScimTokensRepository;
  users: UsersRepository;
  serviceAccounts: ServiceAccountsRepository;
  leakedCredentials: LeakedCredentialsRepository;
  audit: AuditRepository;
}

/** Of src/teams' TeamsService, what the team page's notices need: declared by shape (teams is below this feature). */
export interface TeamNoticeAccess {
  resolveTeam(actor: Actor, name: string): Promise<{ org: { id: string }; team: { id: string } }>;
  accessTo(actor: Actor, name: string): Promise<{ canManage: boolean }>;
}

type ReportResult = z.output<typeof reportResultOut>;
export type LeakedCredentialView = z.output<typeof leakedCredentialOut>;

/** Tokens in one report at most: GitHub sends reports of a few; a larger one is refused whole (400), before any lookup. */
const MAX_REPORT_ITEMS = 1000;

/** A string of the report: bounded, and without U+0000 (which PostgreSQL cannot store in text). */
const reportText = (max: number) => z.string().max(max).refine((s) => !s.includes('\0'), 'contains a NUL character (U+0000)');
const reportBody = z
  .array(
    z.object({
      token: z.string().min(1).max(1024),
      type: reportText(200).default(''),
      url: reportText(4096).nullish(),
      source: reportText(200).nullish(),
    }),
  )
  .max(MAX_REPORT_ITEMS);
type ReportItem = z.output<typeof reportBody>[number];

type Found =
  | { type: 'api_key'; row: ApiKeyRow; hash: string; label: string; live: boolean }
  | { type: 'access_token'; row: AccessTokenRow; hash: string; label: string; live: boolean }
  | { type: 'scim_token'; row: ScimTokenRow; hash: string; label: string; live: boolean };

/** The report as it came: the raw bytes (the signature is over them) and its two headers. */
export interface SignedReport {
  body: Buffer;
  keyId: string | undefined;
  signature: string | undefined;
  ip: string;
  requestId: string;
}

const AUDIT_ACTION = { api_key: 'key.leaked', access_token: 'access_token.leaked', scim_token: 'scim.token.leaked' } as const;
const SCIM_PREFIX = `${CREDENTIAL_PREFIXES.scim}-`;
const ACCESS_PREFIX = `${CREDENTIAL_PREFIXES.access_token}-`;

function invalidSignature(): AppError {
  return errors.unauthenticated('the report is not signed by one of the secret scanner\'s published keys: nothing was revoked', 'invalid_signature');
}

/**
 * Leaked credentials revoke themselves: a secret scanner (GitHub's partner program) reports tokens it
 * found public; each that is a live trackgate credential (API key, access token, SCIM token) is revoked
 * at once, through the cache invalidator (every instance within the revocation bound), with an audit
 * event where it leaked and a notice for its owner. Nothing is done for a report whose signature over
 * its raw body does not hold.
 */
export class SecretScanningService {
  private readonly keys: ScannerKeys | null;

  constructor(
    private readonly store: Store<SecretScanningRepos>,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
    private readonly teams: TeamNoticeAccess,
    fetcher: ScannerKeysFetcher,
    options: { keysUrl: string },
    private readonly logger: Logger,
  ) {
    this.keys = options.keysUrl === 'off' ? null : new ScannerKeys(fetcher, { url: options.keysUrl }, logger);
  }

  /** Verifies a report, revokes the live credentials it names, and answers each token's verdict in the report's order. */
  async report(input: SignedReport): Promise<ReportResult[]> {
    if (!this.keys) throw errors.notFound('POST /gateway/v1/secret-scanning/reports (secret scanning is off: TRACKGATE_SECRET_SCANNING_KEYS_URL=off)');
    const { keyId, signature } = input;
    if (!keyId || !signature || keyId.length > 512 || signature.length > 1024) throw invalidSignature();
    const problem = await this.keys.check(input.body, keyId, signature);
    if (problem) {
      this.logger.warn({ key_identifier: keyId.slice(0, 100), problem, request_id: input.requestId }, 'secret scanning: a report was refused (its signature does not hold); nothing was revoked');
      throw invalidSignature();
    }
    const items = parseReport(input.body);
    const now = new Date().toISOString();

    // Each distinct token is looked up once (by its hash, on the credential's own table); its first mention says where it leaked.
    const hashed = items.map((item) => ({ item, hash: hashSecret(item.token, 'hex') }));
    const found = new Map<string, { item: ReportItem; credential: Found | null }>();
    for (const { item, hash } of hashed) {
      if (!found.has(hash)) found.set(hash, { item, credential: await this.find(item.token, hash, now) });
    }
    const live = [...found.values()].filter((f) => f.credential?.live === true) as Array<{ item: ReportItem; credential: Found }>;
    const revoked = live.length ? await this.revoke(live, { keyId, ip: input.ip, requestId: input.requestId }, now) : 0;
    const ours = [...found.values()].filter((f) => f.credential !== null).length;
    this.logger.info({ tokens: items.length, distinct: found.size, ours, revoked, request_id: input.requestId }, 'secret scanning: report received');
    return hashed.map(({ item, hash }) => ({ token_hash: hash, token_type: item.type, label: found.get(hash)?.credential ? 'true_positive' : 'false_positive' }));
  }

  /** The credential a token is, by its prefix (a token of the wrong shape or checksum is none, without a lookup). */
  private async find(token: string, hash: string, now: string): Promise<Found | null> {
    const repos = this.store.repos;
    if (token.startsWith(SCIM_PREFIX)) {
      if (!isSecretTokenShape(token, CREDENTIAL_PREFIXES.scim)) return null;
      const row = await repos.scimTokens.findByHash(hash);
      return row ? { type: 'scim_token', row, hash, label: row.token_id, live: row.revoked_at === null } : null;
    }
    if (token.startsWith(ACCESS_PREFIX)) {
      if (!isSecretTokenShape(token, CREDENTIAL_PREFIXES.access_token)) return null;
      const row = await repos.accessTokens.findByHash(hash);
      return row ? { type: 'access_token', row, hash, label: row.token_id, live: row.revoked_at === null && row.expires_at > now } : null;
    }
    const prefix = token.slice(0, 3);
    if (prefix !== KEY_PREFIXES.user && prefix !== KEY_PREFIXES.service_account) return null;
    if (!isSecretTokenShape(token, prefix)) return null;
    const row = await repos.keys.findByHash(hash);
    return row ? { type: 'api_key', row, hash, label: row.key_id, live: row.revoked_at === null && (row.expires_at === null || row.expires_at > now) } : null;
  }

  /**
   * Revokes the live credentials in one transaction; each one this transaction revoked (a concurrent
   * report or its owner may have been first: then they recorded it) gets its audit event and notice,
   * so a second report of the same token adds neither. Returns how many it revoked.
   */
  private async revoke(live: Array<{ item: ReportItem; credential: Found }>, who: { keyId: string; ip: string; requestId: string }, now: string): Promise<number> {
    const actor = { type: 'secret_scanner', id: who.keyId.slice(0, 200), name: 'secret-scanning', ip: who.ip, requestId: who.requestId };
    return this.invalidator.transaction(this.store, async (repos, invalidate) => {
      let count = 0;
      for (const { item, credential: f } of live) {
        const orgId = f.row.org_id;
        let owner: { userId: string | null; serviceAccountId: string | null };
        if (f.type === 'api_key') {
          if (!(await repos.keys.revoke(orgId, f.row.id, now))) continue;
          invalidate.key(f.hash);
          owner = { userId: f.row.user_id, serviceAccountId: f.row.service_account_id };
        } else if (f.type === 'access_token') {
          if (!(await repos.accessTokens.revoke(orgId, f.row.id, now))) continue;
          invalidate.key(f.hash);
          owner = { userId: null, serviceAccountId: f.row.service_account_id };
        } else {
          // SCIM tokens are looked up on every request, not cached: the revocation itself ends them everywhere.
          if (!(await repos.scimTokens.revoke(orgId, f.row.id, now))) continue;
          // The notice goes to the admin who made the token (on their settings page).
          owner = { userId: f.row.created_by, serviceAccountId: null };
        }
        count++;
        const ownerName = owner.serviceAccountId
          ? ((await repos.serviceAccounts.findById(orgId, owner.serviceAccountId))?.username ?? null)
          : owner.userId
            ? ((await repos.users.findById(orgId, owner.userId))?.username ?? null)
            : null;
        await this.audit.record(repos, actor, {
          orgId,
          action: AUDIT_ACTION[f.type],
          targetType: f.type,
          targetId: f.row.id,
          targetName: f.label,
          details: { url: item.url ?? null, source: item.source ?? null, type: item.type, key_id: f.label, owner: ownerName, owner_type: owner.serviceAccountId ? 'service_account' : owner.userId ? 'user' : null },
        });
        await repos.leakedCredentials.insert({
          id: randomUUID(),
          org_id: orgId,
          credential_type: f.type,
          credential_id: f.row.id,
          label: f.label,
          user_id: owner.serviceAccountId ? null : owner.userId,
          service_account_id: owner.serviceAccountId,
          url: item.url ?? null,
          source: item.source ?? null,
          reported_at: now,
          dismissed_at: null,
        });
      }
      return count;
    });
  }

  /** The caller's own notices: a person's credentials, or a service account's. */
  async listMine(actor: Actor): Promise<LeakedCredentialView[]> {
    const p = actor.principal;
    const rows = p.type === 'user' ? await this.store.repos.leakedCredentials.listForUser(p.orgId, p.id) : await this.store.repos.leakedCredentials.listForServiceAccount(p.orgId, p.id);
    return rows.map(noticeView);
  }

  /** The notices of a team's service accounts, for those who manage the team (org admins, the team's admins); none for anyone else. */
  async listForTeam(actor: Actor, team: string): Promise<LeakedCredentialView[]> {
    if (!(await this.teams.accessTo(actor, team)).canManage) return [];
    const ctx = await this.teams.resolveTeam(actor, team);
    return (await this.store.repos.leakedCredentials.listForTeam(ctx.org.id, ctx.team.id)).map(noticeView);
  }

  async dismissMine(actor: Actor, id: string): Promise<void> {
    const p = actor.principal;
    if (!(await this.store.repos.leakedCredentials.dismissForUser(p.orgId, p.id, id, new Date().toISOString()))) throw errors.notFound(`notice "${id}"`);
  }

  async dismissForTeam(actor: Actor, team: string, id: string): Promise<void> {
    if (!(await this.teams.accessTo(actor, team)).canManage) throw errors.forbidden('only an organization admin or an admin of this team can dismiss its notices', 'insufficient_role');
    const ctx = await this.teams.resolveTeam(actor, team);
    if (!(await this.store.repos.leakedCredentials.dismissForTeam(ctx.org.id, ctx.team.id, id, new Date().toISOString()))) throw errors.notFound(`notice "${id}" of team "${team}"`);
  }
}

/** The report's body as JSON and its items; a clear 400 otherwise. */
function parseReport(body: Buffer): ReportItem[] {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw errors.badRequest('the report is not JSON: expected an array of {token, type, url, source}');
  }
  const parsed = reportBody.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path ?? [];
    const where = path.length ? `item ${String(path[0])}${path.length > 1 ? `.${path.slice(1).join('.')}` : ''}` : 'the report';
    throw errors.badRequest(`${where}: ${issue?.message ?? 'invalid'} (expected an array of at most ${MAX_REPORT_ITEMS} {token, type, url, source})`);
  }
  return parsed.data;
}

function noticeView(r: LeakedCredentialNoticeRow): LeakedCredentialView {
  return {
    id: r.id,
    credential_type: r.credential_type as LeakedCredentialView['credential_type'],
    label: r.label,
    service_account: r.service_account_username,
    url: r.url,
    source: r.source,
    reported_at: r.reported_at,
  };
}
