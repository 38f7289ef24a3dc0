import type { Request } from 'express';
import passport from 'passport';
import { newCsrfToken } from '../../http/csrf.ts';

/**
 * Who proved who they are, and how: what every sign-in strategy hands to Passport (`this.success(signIn)`,
 * then `req.login`). An SSO login (OIDC or SAML) names its connection; a one-time login link does not.
 */
export interface SignIn {
  userId: string;
  orgId: string;
  method: 'sso' | 'link';
  connectionId: string | null;
}

/**
 * A sign-in as the session keeps it (`session.passport.user`, written by Passport's session manager at
 * `req.login`, after it regenerated the session): the person, when they signed in (the absolute timeout
 * counts from it) and the CSRF token of this sign-in's cookie requests.
 */
export interface SessionSignIn extends SignIn {
  /** Epoch ms of the login. */
  loginAt: number;
  /** Sent back as X-CSRF-Token (or the csrf_token form field) on state-changing cookie requests. */
  csrfToken: string;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Passport's typing of req.user is this global interface
  namespace Express {
    // req.user: the sign-in the session holds (passport.session()), or the one a strategy just made.
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging with @types/passport's User
    interface User extends SignIn {}
  }
}

/** The sign-in stored in a session's data, when it has every field (anything else is no sign-in). */
export function storedSignIn(value: unknown): SessionSignIn | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Partial<SessionSignIn>;
  if (typeof v.userId !== 'string' || typeof v.orgId !== 'string' || typeof v.loginAt !== 'number' || typeof v.csrfToken !== 'string') return null;
  if (v.method !== 'sso' && v.method !== 'link') return null;
  if (v.connectionId !== null && typeof v.connectionId !== 'string') return null;
  return { userId: v.userId, orgId: v.orgId, method: v.method, connectionId: v.connectionId, loginAt: v.loginAt, csrfToken: v.csrfToken };
}

export type Authenticator = InstanceType<typeof passport.Passport>;

/**
 * The instance's Passport: a new Authenticator per app (not the module's global one), with the sign-in as
 * what the session stores. Strategies are added per SSO connection by ConnectionStrategies.
 */
export function createAuthenticator(): Authenticator {
  const authenticator = new passport.Passport();
  authenticator.serializeUser<SessionSignIn>((user, done) => {
    const signIn: SessionSignIn = { userId: user.userId, orgId: user.orgId, method: user.method, connectionId: user.connectionId, loginAt: Date.now(), csrfToken: newCsrfToken() };
    done(null, signIn);
  });
  // req.user on the login and page routes; the timeouts and the person's standing are checked by
  // SessionManager.read and the session principal, which every protected path goes through.
  authenticator.deserializeUser<unknown>((stored, done) => {
    done(null, storedSignIn(stored) ?? false);
  });
  return authenticator;
}

/**
 * req.login as a promise: Passport regenerates the session (a fresh id: whatever session the browser had,
 * or was given, is dropped; nothing of it is kept), stores the sign-in and saves it.
 */
export async function logIn(req: Request, signIn: SignIn): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on what the session store failed with
  await new Promise<void>((resolve, reject) => req.login(signIn, { session: true, keepSessionInfo: false }, (err: unknown) => (err ? reject(err) : resolve())));
}

/**
 * req.logout as a promise: Passport clears the sign-in, saves, then regenerates the session, which destroys the
 * old session id in the shared store, so it ends on every instance at once.
 */
export async function logOut(req: Request): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on what the session store failed with
  await new Promise<void>((resolve, reject) => req.logout({ keepSessionInfo: false }, (err: unknown) => (err ? reject(err) : resolve())));
}
