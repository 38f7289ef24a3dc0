import type { IncomingMessage } from 'node:http';
import { parse as parseCookies } from 'cookie';
import { unsign } from 'cookie-signature';
import session from 'express-session';
import type { SessionData } from 'express-session';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import { carriesCsrfToken } from '../http/csrf.ts';
import type { RedisKeyspace } from '../redis/keyspace.ts';
import { redisUnavailable } from '../redis/redis.ts';
import type { SessionsRepository } from './sessions.repository.ts';
import { logIn, storedSignIn } from './passport/authenticator.ts';
import type { Authenticator, SessionSignIn, SignIn } from './passport/authenticator.ts';

/**
 * What a session holds. A session exists before sign-in too (a page's flash message); the sign-in is what
 * Passport's req.login stores under `passport.user` (src/sso/passport/authenticator.ts: the person, how and
 * when they signed in, the CSRF token), and read() hands out only sessions whose sign-in is whole.
 */
declare module 'express-session' {
  interface SessionData {
    passport?: { user?: SessionSignIn };
    /** The web pages' one-view message (src/web/flash.ts), sealed: it may hold a new API key for one page view. */
    flash?: string;
  }
}

/** The sign-in of a session's stored data, whole, or null (no sign-in yet, or a shape this version does not know). */
function signInOf(data: Partial<SessionData> | null | undefined): SessionSignIn | null {
  return storedSignIn(data?.passport?.user);
}

export const SESSION_COOKIE = 'trackgate.sid';

export interface SessionTimeouts {
  idleMs: number;
  absoluteMs: number;
}

export function sessionTimeouts(config: Pick<Config, 'sessionIdleMinutes' | 'sessionAbsoluteHours'>): SessionTimeouts {
  return { idleMs: config.sessionIdleMinutes * 60_000, absoluteMs: config.sessionAbsoluteHours * 3_600_000 };
}

/** When a session stops being valid: idle deadline from now, capped by the absolute deadline from login. */
export function sessionDeadline(data: Partial<SessionData>, timeouts: SessionTimeouts, now = Date.now()): number {
  const absolute = (signInOf(data)?.loginAt ?? now) + timeouts.absoluteMs;
  return Math.min(now + timeouts.idleMs, absolute);
}

type Cb = (err?: unknown, data?: SessionData | null) => void;

/**
 * express-session's store on the database (SQLite or PostgreSQL through
 * Kysely, so one implementation serves both). Written here instead of taking
 * a dialect-specific package (connect-sqlite3, connect-pg-simple): it is
 * small, and it enforces the idle and absolute timeouts itself.
 */
export class DbSessionStore extends session.Store {
  constructor(
    private readonly repo: SessionsRepository,
    private readonly timeouts: SessionTimeouts,
  ) {
    super();
  }

  override get(sid: string, cb: Cb): void {
    this.repo
      .find(sid)
      .then(async (row) => {
        if (!row) return cb(null, null);
        if (Date.parse(row.expires_at) <= Date.now()) {
          await this.repo.delete(sid);
          return cb(null, null);
        }
        cb(null, JSON.parse(row.data) as SessionData);
      })
      .catch((err: unknown) => cb(err));
  }

  override set(sid: string, data: SessionData, cb?: Cb): void {
    const expires = new Date(sessionDeadline(data, this.timeouts)).toISOString();
    // A session from before sign-in (a flash) has no person yet.
    this.repo
      .save({ sid, data: JSON.stringify(data), user_id: signInOf(data)?.userId ?? null, expires_at: expires })
      .then(() => cb?.())
      .catch((err: unknown) => cb?.(err));
  }

  override touch(sid: string, data: SessionData, cb?: Cb): void {
    const expires = new Date(sessionDeadline(data, this.timeouts)).toISOString();
    this.repo
      .setExpiry(sid, expires)
      .then(() => cb?.())
      .catch((err: unknown) => cb?.(err));
  }

  override destroy(sid: string, cb?: Cb): void {
    this.repo
      .delete(sid)
      .then(() => cb?.())
      .catch((err: unknown) => cb?.(err));
  }

  async destroyAllOfUser(userId: string): Promise<void> {
    await this.repo.deleteOfUser(userId);
  }

  async deleteExpired(): Promise<void> {
    await this.repo.deleteExpired(new Date().toISOString());
  }
}

/**
 * express-session's store on Redis (TRACKGATE_REDIS_URL), on ioredis.
 * connect-redis 9 speaks only the node-redis v5 client API (its set() passes
 * an {expiration} object that ioredis does not understand), so this is the
 * same few lines on ioredis: JSON under "<prefix>sess:<sid>" with a TTL that
 * is the idle deadline capped by the absolute one. The keys are in the
 * RedisKeyspace (TRACKGATE_REDIS_KEY_PREFIX), so deployments sharing one Redis
 * never share sessions (with the default "trackgate:" the keys are those of older versions).
 */
export class RedisSessionStore extends session.Store {
  private readonly prefix: string;
  private readonly userPrefix: string;
  /** The connection was lost (closed) since it was last ready; a first connection still under way is not. */
  private lost = false;

  constructor(
    private readonly redis: Redis,
    private readonly timeouts: SessionTimeouts,
    keyspace: RedisKeyspace,
  ) {
    super();
    this.prefix = keyspace.sessions;
    this.userPrefix = keyspace.sessionsOfUser;
    redis.on('close', () => {
      this.lost = true;
    });
    redis.on('ready', () => {
      this.lost = false;
    });
  }

  private ttlSeconds(data: Partial<SessionData>): number {
    return Math.max(1, Math.ceil((sessionDeadline(data, this.timeouts) - Date.now()) / 1000));
  }

  /**
   * Redis is not connected: refused at once rather than queued behind ioredis's reconnection and retries
   * (seconds per command, a dozen for a sign-in's regenerate and save), so that a browser gets its 503 now.
   * Only once the connection was lost: at start-up, before the first `ready`, a command waits in ioredis's
   * queue for the connection under way (bounded by its connect timeout) instead of a 503 to the first visitors.
   */
  private down(cb: Cb | undefined): boolean {
    if (this.redis.status === 'ready' || !this.lost) return false;
    cb?.(redisUnavailable(new Error(`redis connection ${this.redis.status}`)));
    return true;
  }

  override get(sid: string, cb: Cb): void {
    if (this.down(cb)) return;
    // A failed read is `unavailable` (503), never "no session": that would send a signed-in person to the login.
    this.redis.get(this.prefix + sid).then(
      (v) => cb(null, v ? (JSON.parse(v) as SessionData) : null),
      (err: unknown) => cb(redisUnavailable(err)),
    );
  }

  override set(sid: string, data: SessionData, cb?: Cb): void {
    if (this.down(cb)) return;
    const multi = this.redis.multi().set(this.prefix + sid, JSON.stringify(data), 'EX', this.ttlSeconds(data));
    const userId = signInOf(data)?.userId;
    if (userId) multi.sadd(this.userPrefix + userId, sid).expire(this.userPrefix + userId, Math.ceil(this.timeouts.absoluteMs / 1000));
    multi
      .exec()
      .then(() => cb?.())
      .catch((err: unknown) => cb?.(redisUnavailable(err)));
  }

  override touch(sid: string, data: SessionData, cb?: Cb): void {
    if (this.down(cb)) return;
    this.redis
      .expire(this.prefix + sid, this.ttlSeconds(data))
      .then(() => cb?.())
      .catch((err: unknown) => cb?.(redisUnavailable(err)));
  }

  override destroy(sid: string, cb?: Cb): void {
    if (this.down(cb)) return;
    this.redis
      .del(this.prefix + sid)
      .then(() => cb?.())
      .catch((err: unknown) => cb?.(redisUnavailable(err)));
  }

  async destroyAllOfUser(userId: string): Promise<void> {
    const key = this.userPrefix + userId;
    try {
      const sids = await this.redis.smembers(key);
      if (sids.length) await this.redis.del(...sids.map((s) => this.prefix + s));
      await this.redis.del(key);
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  async deleteExpired(): Promise<void> {
    /* Redis expires keys itself. */
  }
}

export type TrackgateSessionStore = DbSessionStore | RedisSessionStore;

export interface SessionManagerOptions {
  store: TrackgateSessionStore;
  /** Signs the cookie (express-session's "secret"); derived from TRACKGATE_SECRET_KEY. */
  secret: string;
  timeouts: SessionTimeouts;
  /** The public URL is https: the cookie gets Secure. */
  secure: boolean;
  /** The instance's Passport: initialize() and session() run after express-session on every session route. */
  authenticator: Authenticator;
}

export interface LoadedSession {
  sid: string;
  data: SessionSignIn;
}

/**
 * The browser session, used two ways with one store and one cookie:
 * express-session's middleware on the login pages (create, regenerate,
 * destroy), and a lean reader for every other path (the authenticator's
 * session hook, the proxy, forward-auth), which verifies the signed cookie,
 * loads the session, enforces the timeouts and slides the idle deadline.
 */
export class SessionManager {
  private readonly loaded = new WeakMap<IncomingMessage, LoadedSession>();
  private readonly lastTouch = new Map<string, number>();

  constructor(private readonly options: SessionManagerOptions) {}

  get store(): TrackgateSessionStore {
    return this.options.store;
  }

  middleware(): RequestHandler {
    const mw = session({
      name: SESSION_COOKIE,
      secret: this.options.secret,
      store: this.options.store,
      resave: false,
      saveUninitialized: false,
      rolling: false,
      unset: 'destroy',
      // A browser-session cookie; the idle and absolute timeouts are enforced on the server.
      cookie: { httpOnly: true, sameSite: 'lax', secure: this.options.secure, path: '/' },
    });
    const secure = this.options.secure;
    const initialize = this.options.authenticator.initialize() as RequestHandler;
    const passportSession = this.options.authenticator.session() as RequestHandler;
    return (req, res, next) => {
      // TLS ends at the edge in front of trackgate; when the public URL is
      // https, the browser's connection is, so express-session may set a Secure cookie.
      if (secure) Object.defineProperty(req, 'secure', { value: true, configurable: true });
      mw(req, res, (err?: unknown) => {
        if (err !== undefined && err !== null) {
          // The store could not be read (Redis or the database unavailable): express-session would then
          // delete the session when the answer ends, as one that was unset, signing the person out over a
          // passing failure. Without its id it leaves the stored session alone.
          (req as { sessionID?: string }).sessionID = undefined;
          return next(err);
        }
        // Passport on the session: req.login / req.logout, and req.user from the stored sign-in.
        initialize(req, res, (e?: unknown) => (e ? next(e) : passportSession(req, res, next)));
      });
    };
  }

  /** Reads and validates the session of a request; null when there is none (or it ended). */
  async read(req: IncomingMessage): Promise<LoadedSession | null> {
    const cached = this.loaded.get(req);
    if (cached) return cached;
    const header = req.headers.cookie;
    if (!header || !header.includes(SESSION_COOKIE)) return null;
    const raw = parseCookies(header)[SESSION_COOKIE];
    if (!raw || !raw.startsWith('s:')) return null;
    const sid = unsign(raw.slice(2), this.options.secret);
    if (sid === false) return null;
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the stores pass on what kysely or ioredis rejected with
    const data = await new Promise<SessionData | null>((resolve, reject) => this.options.store.get(sid, (err, d) => (err ? reject(err) : resolve(d ?? null))));
    const signIn = signInOf(data);
    if (!data || !signIn) return null;
    const now = Date.now();
    if (now >= signIn.loginAt + this.options.timeouts.absoluteMs) {
      this.options.store.destroy(sid);
      return null;
    }
    // Slide the idle deadline, at most once a minute per session.
    const last = this.lastTouch.get(sid) ?? 0;
    if (now - last > 60_000) {
      this.lastTouch.set(sid, now);
      if (this.lastTouch.size > 100_000) this.lastTouch.clear();
      this.options.store.touch(sid, data, () => {});
    }
    const loaded = { sid, data: signIn };
    this.loaded.set(req, loaded);
    return loaded;
  }

  /**
   * CSRF (src/http/csrf.ts): the request carries its session's token in
   * X-CSRF-Token (or, for forms, csrf_token). The session is the one read()
   * loaded for this request, so call read() first (the authenticator's
   * session hook does): one source, whether or not express-session ran too.
   */
  verifyCsrf(req: IncomingMessage, formToken?: unknown): boolean {
    return carriesCsrfToken(req, this.loaded.get(req)?.data.csrfToken, formToken);
  }

  /** Ends the request's session (destroyed in the store; no cookie is set for it). */
  static async end(req: Request): Promise<void> {
    await new Promise<void>((resolve, reject) => req.session.destroy((err) => (err ? reject(err) : resolve())));
  }

  /**
   * Signs in a person who just proved who they are (an SSO login, a login link) through Passport's req.login:
   * a new session id — whatever session the browser had, or was given, is dropped — and a new CSRF token.
   * Needs middleware() on the route.
   */
  static async establish(req: Request, who: SignIn): Promise<void> {
    try {
      await logIn(req, who);
    } catch (err) {
      // The store failed (Redis down): express-session has already made a new session id, and would send its
      // cookie with the error page for a session that was never stored. No session, no cookie.
      Reflect.deleteProperty(req, 'session');
      throw err;
    }
  }

}
