import type { Request } from 'express';
import { Strategy } from 'passport-strategy';
import type { OrgRow } from '../../orgs/orgs.repository.ts';
import type { LoginTransaction } from '../login-transactions.ts';
import { OidcLoginError } from '../oidc/problems.ts';
import type { LoginContext, SsoLoginService } from '../sso-login.service.ts';
import type { Connection } from '../sso.service.ts';
import type { SignIn } from './authenticator.ts';

/** passport.authenticate()'s options for a login start (GET/POST /login). */
export interface LoginStartOptions {
  returnTo: string;
  /** The browser's login-binding cookie value (its own, or a new one). */
  binding: string;
  loginHint?: string | undefined;
  /** Called once the login is stored, before the redirect: the route sets the binding cookie then. */
  onStarted(): void;
}

/** passport.authenticate()'s options for a callback: the login's transaction, taken once by the route (its state names the connection). */
export interface LoginCallbackOptions {
  transaction: LoginTransaction;
  org: OrgRow;
  params: URLSearchParams;
  ctx: LoginContext;
}

export type OidcAuthenticateOptions = { start: LoginStartOptions } | { callback: LoginCallbackOptions };

/** What success() hands the route's callback besides the sign-in. */
export interface SsoSignInInfo {
  returnTo: string;
  username: string;
  orgSlug: string;
}

/**
 * The Passport strategy of one OIDC connection (one instance per connection and settings version, made by
 * ConnectionStrategies): it wraps SsoLoginService, which keeps every check (per-login transactions, binding
 * cookie, nonce, azp, pinned algorithms, JWKS cooldown, Azure templated issuers and the tenant allow-list)
 * in one place. Passport's own OIDC strategy (openid-client/passport) is not used: code flow only, one
 * pending login per session (two tabs break) and named by issuer host (Azure AD tenants collide).
 *
 * Start: the transaction is stored, then redirect() to the IdP. Callback: success(signIn, info), or
 * fail(OidcLoginError) for a refused sign-in (the route shows its error page), error() for anything else
 * (a store down), or redirect() to the report of an admin's test login, which signs nobody in.
 */
export class OidcStrategy extends Strategy {
  readonly name: string;

  constructor(
    name: string,
    private readonly connection: Connection,
    private readonly login: SsoLoginService,
    /** Where a finished test login's sealed report is opened (the admin page). */
    private readonly testReportUrl: (sealed: string) => string,
  ) {
    super();
    this.name = name;
  }

  override authenticate(_req: Request, options: OidcAuthenticateOptions): void {
    // Passport does not wait for a promise: every outcome goes through success/fail/redirect/error.
    this.run(options).catch((err: unknown) => {
      // A refused sign-in: the route's callback answers it with its error page, status by the code's kind.
      if (err instanceof OidcLoginError) return this.fail(err, 400);
      this.error(err instanceof Error ? err : new Error(String(err)));
    });
  }

  private async run(options: OidcAuthenticateOptions): Promise<void> {
    if ('start' in options) {
      const s = options.start;
      const started = await this.login.start(this.connection, s.returnTo, s.binding, s.loginHint);
      s.onStarted();
      return this.redirect(started.url, 303);
    }
    const { transaction, org, params, ctx } = options.callback;
    const result = await this.login.complete(this.connection, org, transaction, params, ctx);
    if ('test' in result) return this.redirect(this.testReportUrl(result.sealed), 303);
    const signIn: SignIn = { userId: result.user.id, orgId: result.org.id, method: 'sso', connectionId: result.connectionId };
    const info: SsoSignInInfo = { returnTo: result.returnTo, username: result.user.username, orgSlug: result.org.slug };
    this.success(signIn, info);
  }
}
