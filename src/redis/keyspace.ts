/**
 * Where every Redis key and channel name is made: under TRACKGATE_REDIS_KEY_PREFIX, so deployments
 * (or test runs) sharing one Redis share no sessions, login attempts, counters nor invalidations. One
 * object, built once in src/core.ts and passed to whatever keeps something in Redis.
 *
 * Every family is named here, once. The strings are those deployed keys already have: changing one
 * would orphan every key written under it (a signed-in person signed out, a counter reset). The
 * separators differ for that reason: the rate limiters' names have none because rate-limiter-flexible
 * adds ":" between its keyPrefix and the counted key itself.
 */
export class RedisKeyspace {
  /** A browser session, JSON: `<sessions><sid>`. */
  readonly sessions: string;
  /** A person's session ids, a set (to sign them out everywhere): `<sessionsOfUser><user id>`. */
  readonly sessionsOfUser: string;
  /** A pending sign-in by its state's hash: `<loginTransactions><state hash>`. */
  readonly loginTransactions: string;
  /** One browser's pending sign-ins, a sorted set by start: `<loginTransactionsOfBrowser><binding hash>`. */
  readonly loginTransactionsOfBrowser: string;
  /** rate-limiter-flexible's keyPrefix for failed authentications (the library appends ":<key>"). */
  readonly authFailures: string;
  /** rate-limiter-flexible's keyPrefix for sign-in starts (the library appends ":<key>"). */
  readonly loginStarts: string;
  /** rate-limiter-flexible's keyPrefix for refused token exchanges at /oidc/token (the library appends ":<key>"). */
  readonly exchangeFailures: string;
  /** The pub/sub channel of cache invalidations between instances. */
  readonly invalidationChannel: string;

  constructor(readonly prefix: string) {
    this.sessions = `${prefix}sess:`;
    this.sessionsOfUser = `${prefix}sess:user:`;
    this.loginTransactions = `${prefix}login-tx:`;
    this.loginTransactionsOfBrowser = `${prefix}login-tx-of:`;
    this.authFailures = `${prefix}authfail`;
    this.loginStarts = `${prefix}loginstart`;
    this.exchangeFailures = `${prefix}exchangefail`;
    this.invalidationChannel = `${prefix}invalidate`;
  }
}
