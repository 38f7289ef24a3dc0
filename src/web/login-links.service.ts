import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Store } from '../db/store.ts';
import { hashSecret, newToken, tokenShape } from '../crypto/tokens.ts';
import { AppError, errors } from '../errors/app-error.ts';
import type { OrgRow, OrgsRepository } from '../orgs/orgs.repository.ts';
import type { UserRow, UsersRepository } from '../users/users.repository.ts';
import type { LoginLinkRow, LoginLinksRepository } from './login-links.repository.ts';

/** What login links touch, in one transaction with their audit events. */
export interface LoginLinksRepos {
  loginLinks: LoginLinksRepository;
  users: UsersRepository;
  orgs: OrgsRepository;
  audit: AuditRepository;
}

/** How long a link works: long enough to copy it from a terminal into a browser, short enough to be worthless later. */
export const LOGIN_LINK_TTL_MS = 15 * 60_000;
/** The same, as people are told it ("15 minutes"). */
export const LOGIN_LINK_TTL_TEXT = `${LOGIN_LINK_TTL_MS / 60_000} minutes`;

/** 256 random bits: guessing a live token is hopeless, so a link needs no other secret. */
const TOKEN_BYTES = 32;

/** login_links.token_hash: hex, as its rows have always been. */
export function hashLoginToken(token: string): string {
  return hashSecret(token, 'hex');
}

/** The shape of a token this service makes; anything else is unknown without a lookup. */
const TOKEN_SHAPE = tokenShape(TOKEN_BYTES);
const UNKNOWN_LINK = 'this login link is not valid: check that you copied all of it, or ask the operator for a new one';

export interface IssuedLink {
  url: string;
  expires_at: string;
  user: { username: string; email: string };
  org: string;
}

export interface LinkTarget {
  user: UserRow;
  org: OrgRow;
  link: LoginLinkRow;
}

export interface LinkContext {
  ip: string;
  requestId: string;
}

/**
 * One-time login links: the operator's way into the web pages before SSO is
 * configured (`trackgate bootstrap`), or when it is broken. A link signs its
 * person in once, within LOGIN_LINK_TTL_MS; it is refused for a deactivated person,
 * and in an organization that requires SSO unless the person is the instance
 * operator (who must be able to repair a broken SSO configuration).
 */
export class LoginLinksService {
  constructor(
    private readonly store: Store<LoginLinksRepos>,
    private readonly audit: AuditService,
    private readonly publicUrl: string,
  ) {}

  private repo(repos?: LoginLinksRepos): LoginLinksRepository {
    return (repos ?? this.store.repos).loginLinks;
  }

  /** A new link for a person (the operator's CLI). */
  async issue(input: { orgId: string; userId: string }): Promise<IssuedLink> {
    const token = newToken(TOKEN_BYTES);
    const now = Date.now();
    return this.store.transaction(async (repos) => {
      const [user, org] = await Promise.all([repos.users.findById(input.orgId, input.userId), repos.orgs.findById(input.orgId)]);
      if (!user || !org) throw errors.notFound('user');
      if (user.status !== 'active') throw errors.conflict(`user "${user.username}" is deactivated; a login link would be refused`, 'user_deactivated');
      const expires_at = new Date(now + LOGIN_LINK_TTL_MS).toISOString();
      await this.repo(repos).insert({ token_hash: hashLoginToken(token), org_id: org.id, user_id: user.id, created_by: 'cli', created_at: new Date(now).toISOString(), expires_at, used_at: null });
      await this.audit.record(repos, 'cli', { orgId: org.id, action: 'login.link_issued', targetType: 'user', targetId: user.id, targetName: user.username, details: { expires_at } });
      return { url: `${this.publicUrl}/login/link/${token}`, expires_at, user: { username: user.username, email: user.email }, org: org.slug };
    });
  }

  /** A new link for the person with this email, in whichever organization they are (emails are unique on the instance). */
  async issueForEmail(email: string): Promise<IssuedLink> {
    const u = await this.repo().userByEmail(email.trim().toLowerCase());
    if (!u) throw errors.notFound(`user with email "${email}"`);
    return this.issue({ orgId: u.org_id, userId: u.id });
  }

  /** Why a link cannot be used (unknown, used, expired), or null when it can. */
  private static linkRefusal(link: LoginLinkRow | undefined, now: string): AppError | null {
    if (!link) return new AppError('link_unknown', UNKNOWN_LINK);
    if (link.used_at !== null) return new AppError('link_used', 'this login link was already used; each link signs in once. Ask the operator for a new one (trackgate login-link)');
    if (link.expires_at <= now) return new AppError('link_expired', `this login link has expired (links work for ${LOGIN_LINK_TTL_TEXT}); ask the operator for a new one (trackgate login-link)`);
    return null;
  }

  /** Why the link's person may not sign in with it (deactivated, organization requires SSO), or who they are. */
  private async accountCheck(repos: LoginLinksRepos, link: LoginLinkRow): Promise<AppError | LinkTarget> {
    const [user, org] = await Promise.all([repos.users.findById(link.org_id, link.user_id), repos.orgs.findById(link.org_id)]);
    if (!user || !org) return new AppError('link_unknown', 'the account of this login link no longer exists');
    if (user.status !== 'active') return new AppError('user_deactivated', `the account ${user.username} is deactivated; ask an administrator of ${org.slug}`, { kind: 'forbidden' });
    if (org.require_sso === 1 && user.instance_admin !== 1) {
      return new AppError('sso_required', `the organization ${org.slug} requires single sign-on: sign in through your identity provider at /login instead`);
    }
    return { user, org, link };
  }

  /** The person a link would sign in, for the confirmation page; throws the reason it cannot. */
  async inspect(token: string): Promise<LinkTarget> {
    const link = TOKEN_SHAPE.test(token) ? await this.repo().find(hashLoginToken(token)) : undefined;
    if (!link) throw new AppError('link_unknown', UNKNOWN_LINK);
    const refused = LoginLinksService.linkRefusal(link, new Date().toISOString());
    if (refused) throw refused;
    const r = await this.accountCheck(this.store.repos, link);
    if (r instanceof AppError) throw r;
    return r;
  }

  /**
   * Uses a link, once: claimed by an atomic update, then checked, in one
   * transaction. A refusal rolls the claim back (the link stays as it was,
   * and is audited as refused when its organization is known).
   */
  async consume(token: string, ctx: LinkContext): Promise<LinkTarget> {
    const hash = TOKEN_SHAPE.test(token) ? hashLoginToken(token) : null;
    const now = new Date().toISOString();
    try {
      return await this.store.transaction(async (repos) => {
        const repo = this.repo(repos);
        const claimed = hash ? await repo.claim(hash, now) : undefined;
        if (!claimed) {
          // Say why from the row as it is (unknown, used, expired).
          throw LoginLinksService.linkRefusal(hash ? await repo.find(hash) : undefined, now) ?? new AppError('link_used', 'this login link was already used; each link signs in once');
        }
        const r = await this.accountCheck(repos, claimed);
        if (r instanceof AppError) throw r;
        await this.audit.record(repos, { type: 'user', id: r.user.id, name: r.user.username, ip: ctx.ip, requestId: ctx.requestId }, {
          orgId: r.org.id,
          action: 'login.link',
          targetType: 'user',
          targetId: r.user.id,
          targetName: r.user.username,
          details: { instance_admin: r.user.instance_admin === 1 },
        });
        return r;
      });
    } catch (err) {
      await this.auditRefusal(hash, err, ctx);
      throw err;
    }
  }

  /**
   * The check of a link about to be used (the sign-in button): inspect's, with a refusal of the account
   * (deactivated, SSO required) audited as consume audits it. The sign-in checks first and consumes only
   * once the session exists, so that a failure in between (the session store down) leaves the link unused.
   */
  async check(token: string, ctx: LinkContext): Promise<LinkTarget> {
    try {
      return await this.inspect(token);
    } catch (err) {
      await this.auditRefusal(TOKEN_SHAPE.test(token) ? hashLoginToken(token) : null, err, ctx);
      throw err;
    }
  }

  /** An account's refusal (deactivated, SSO required) is audited in the link's organization. */
  private async auditRefusal(hash: string | null, err: unknown, ctx: LinkContext): Promise<void> {
    if (!(err instanceof AppError) || (err.code !== 'user_deactivated' && err.code !== 'sso_required') || !hash) return;
    const link = await this.repo().find(hash);
    if (!link) return;
    await this.audit.record(this.store.repos, { type: 'anonymous', id: null, name: null, ip: ctx.ip, requestId: ctx.requestId }, {
      orgId: link.org_id,
      action: 'login.link_refused',
      targetType: 'user',
      targetId: link.user_id,
      details: { code: err.code },
    });
  }

  async sweep(): Promise<void> {
    // Kept a day past expiry so that "already used" / "expired" stay explainable for a while.
    await this.repo().deleteExpired(new Date(Date.now() - 86_400_000).toISOString());
  }
}
