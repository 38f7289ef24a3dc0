import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

const booleanFromEnv = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');
/** A whole number within bounds, from a JSON number or an environment string; every failure says the same plain sentence (not zod's "received NaN"). */
const intFromEnv = (min: number, max: number) => {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

const databaseUrl = z
  .string()
  .refine((v) => v.startsWith('sqlite:') || v.startsWith('postgres://') || v.startsWith('postgresql://'), {
    error: 'must be sqlite:<file path> or postgres://...',
  });

const httpUrl = z
  .url()
  .refine((v) => v.startsWith('http://') || v.startsWith('https://'), { error: 'must be an http:// or https:// URL' })
  .transform((v) => v.replace(/\/+$/, ''));

/** IPs and CIDRs (a JSON array, or comma-separated in the environment), each checked here so that a typo stops the service. */
function addressList(options: { refuseEverything: boolean }) {
  return z
    .union([z.array(z.string()), z.string()])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
    .superRefine((entries, ctx) => {
      for (const raw of entries) {
        const [addr = '', bits, extra] = raw.split('/');
        const family = isIP(addr);
        const max = family === 6 ? 128 : 32;
        if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) {
          ctx.addIssue({ code: 'custom', message: `"${raw}" is not an IP address or CIDR` });
        } else if (options.refuseEverything && bits !== undefined && Number(bits) === 0) {
          ctx.addIssue({ code: 'custom', message: `"${raw}" trusts every address, so any client could write its own X-Forwarded-For; list only your proxies' addresses or subnets` });
        }
      }
    });
}

/**
 * The one configuration schema. Unknown keys are rejected so that a typo in a
 * config file or an environment variable stops the service instead of being
 * silently ignored.
 */
export const configSchema = z
  .object({
    port: intFromEnv(0, 65535).default(8080),
    host: z.string().min(1).default('0.0.0.0'),
    publicUrl: httpUrl.optional(),
    databaseUrl: databaseUrl.default('sqlite:./data/trackgate.db'),
    redisUrl: z.string().refine((v) => /^rediss?:\/\//.test(v), { error: 'must be redis://... or rediss://...' }).optional(),
    /** Prefix of every Redis key and channel, so several deployments (or test runs) can share one Redis. */
    redisKeyPrefix: z.string().max(100).regex(/^[A-Za-z0-9:_.-]*$/, 'letters, digits and : _ . - only').default('trackgate:'),
    /**
     * The longest trackgate waits for the database, per query: SQLite's busy timeout; PostgreSQL's connect
     * timeout, read timeout and statement_timeout. Past it the request is answered 503 `unavailable` with
     * Retry-After (migrations are not bounded by it).
     */
    databaseTimeoutMs: intFromEnv(100, 600_000).default(5000),
    /** The longest a command on the shared Redis connection (sessions, sign-ins, rate limits) waits; then 503 `unavailable`. */
    redisTimeoutMs: intFromEnv(50, 600_000).default(2000),
    upstreamUrl: httpUrl.optional(),
    upstreamTimeoutMs: intFromEnv(100, 3_600_000).default(60_000),
    upstreamConnections: intFromEnv(1, 4096).default(128),
    /** Lifetime of the signed identity assertion (X-Trackgate-Assertion). */
    assertionTtlSeconds: intFromEnv(10, 3600).default(60),
    /**
     * What tells the upstream who the caller is: `plain-and-assertion`, the plain X-Trackgate-* headers and
     * the signed assertion; `assertion`, the signed assertion alone (for an upstream that verifies it: the
     * assertion carries every claim the plain headers do, and each header less is work saved per request).
     */
    identityHeaders: z.enum(['plain-and-assertion', 'assertion']).default('plain-and-assertion'),
    /** The assertion's `aud`; defaults to the upstream URL, else the public URL. */
    assertionAudience: z.string().min(1).optional(),
    /** Age after which the assertion signing key is rotated (0 = never). */
    signingKeyRotationDays: intFromEnv(0, 3650).default(30),
    /**
     * 32 bytes: 64 hex characters (`openssl rand -hex 32`), or base64 of 32 bytes; generated into the data folder
     * on first start when absent. Anything else is refused: a passphrase was accepted before and stretched with
     * one SHA-256, which made a guessable key look like a strong one.
     */
    secretKey: z
      .string()
      .transform((v) => v.trim())
      .refine((v) => /^[0-9a-fA-F]{64}$/.test(v) || /^[A-Za-z0-9+/_-]{43}=?$/.test(v), {
        error: 'must be 64 hex characters (generate one with `openssl rand -hex 32`) or the base64 of 32 bytes',
      })
      .optional(),
    dataDir: z.string().min(1).optional(),
    allowHttpIssuers: booleanFromEnv.default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    logFile: z.string().min(1).optional(),
    /**
     * Peers whose X-Forwarded-* headers are believed: IPs or CIDRs, comma-separated in the environment.
     * Only the proxies' own addresses: a prefix of length 0 (0.0.0.0/0, ::/0) is refused, since with every
     * peer trusted X-Forwarded-For is the client's own writing (failed-auth limits and audit addresses with it).
     */
    trustedProxies: addressList({ refuseEverything: true }).default(['127.0.0.1/8', '::1/128']),
    /**
     * Peers that may read GET /metrics, judged on the connection's own address (never X-Forwarded-For);
     * a request a proxy relayed (X-Forwarded-For, Forwarded or X-Real-IP present) is refused whatever its peer.
     */
    metricsAllow: addressList({ refuseEverything: false }).default(['127.0.0.1/8', '::1/128']),
    keyCacheTtlSeconds: intFromEnv(0, 3600).default(30),
    /**
     * About 4 KB per cached key (its principal, signed assertion and identity headers). With `npm start`'s
     * heap flags, a full cache under proxy, verify and management load, and a million keys in the database
     * (`npm run bench`, its full-cache run), 15 000 entries peaked at 252 MB resident against a 256 MB
     * budget; 10 000 leave room. Raise it with the heap.
     */
    keyCacheMaxEntries: intFromEnv(100, 10_000_000).default(10_000),
    /**
     * Stale-while-unavailable: a cached key whose entry is past keyCacheTtlSeconds, and whose lookup finds
     * the database unavailable, keeps its cached answer for up to this long past the TTL (0: never). A
     * revocation announced to the instance still removes the entry at once.
     */
    keyCacheStaleSeconds: intFromEnv(0, 86_400).default(300),
    keyNegativeCacheTtlSeconds: intFromEnv(0, 600).default(5),
    /**
     * Every isolate reads the database's log of cache invalidations this often (src/auth/invalidation-poller.ts):
     * the bound on how long a revoked key, deactivated user or removed member can still pass on an instance
     * that missed the Redis message (Redis down, a partition, a change made by the CLI). About one cheap query
     * per poll and isolate.
     */
    invalidationPollMs: intFromEnv(50, 1000).default(500),
    lastUsedFlushMs: intFromEnv(10, 3_600_000).default(15_000),
    /** Live (neither revoked nor expired) API keys one user or service account may hold: creation and rotation beyond it answer 409. */
    maxKeysPerPrincipal: intFromEnv(1, 100_000).default(50),
    authFailureLimit: intFromEnv(1, 1_000_000).default(30),
    authFailureWindowSeconds: intFromEnv(1, 86_400).default(60),
    shutdownTimeoutMs: intFromEnv(0, 600_000).default(10_000),
    /**
     * Every request's head (request line and headers) must arrive within this, on every path: a client
     * that trickles its head (slowloris) is answered 408 and closed. Bodies are not bounded by it.
     */
    requestHeadersTimeoutMs: intFromEnv(500, 120_000).default(10_000),
    /**
     * The body of a request for the management API, the pages or the login (never a proxied upload)
     * must arrive within this after its head, or it is answered 408 and the connection closed. Such a
     * request reaches the management worker only once its body has arrived (see management-worker.ts).
     */
    managementBodyTimeoutMs: intFromEnv(500, 600_000).default(10_000),
    /**
     * Workload federation (POST /oidc/token): how long an access token lasts (its `expires_in`). The tracking
     * client refreshes when 5 minutes remain, so less than 10 minutes makes it exchange almost constantly.
     */
    federationAccessTokenTtlSeconds: intFromEnv(300, 43_200).default(3600),
    /** Workload federation: a workload token whose lifetime (exp − iat, or exp − now without iat) exceeds this is refused. */
    federationMaxAssertionLifetimeSeconds: intFromEnv(60, 172_800).default(86_400),
    /** Workload federation: clock tolerance for a workload token's exp / nbf / iat (seconds, kept small). */
    federationClockToleranceSeconds: intFromEnv(0, 300).default(60),
    /**
     * Secret scanning (POST /gateway/v1/secret-scanning/reports): where the scanner's public keys are
     * published, in GitHub's format (`{"public_keys":[{"key_identifier","key"}]}`); "off" turns the endpoint off.
     */
    secretScanningKeysUrl: z.union([z.literal('off'), httpUrl]).default('https://api.github.com/meta/public_keys/secret_scanning'),
    /** SSO: after a JWKS fetch, an unknown kid does not re-fetch for this long (rate limit against random kids). */
    ssoJwksCooldownSeconds: intFromEnv(0, 3600).default(30),
    /** SSO: an IdP's keys are re-fetched when older than this. */
    ssoJwksMaxAgeSeconds: intFromEnv(1, 86_400).default(600),
    /** SSO: clock tolerance for exp/iat/nbf of ID tokens (seconds, kept small). */
    ssoClockToleranceSeconds: intFromEnv(0, 300).default(30),
    /** SSO: timeout of requests to an IdP (discovery, JWKS, token endpoint). */
    ssoHttpTimeoutMs: intFromEnv(100, 60_000).default(5000),
    /**
     * SSO: networks (CIDRs, comma-separated in the environment) where an IdP may be reached although they are not
     * public internet addresses: an IdP inside your own network. Loopback, private, link-local and other
     * non-public addresses are refused otherwise (an organization admin must not make the gateway fetch from them).
     */
    ssoAllowedNetworks: z
      .union([z.array(z.string()), z.string()])
      .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
      .refine((v) => v.every((c) => ipaddr.isValidCIDR(c)), { error: 'must be CIDRs such as 10.20.0.0/16 or fd00:1::/64' })
      .default([]),
    /** SSO: a cached discovery document is refreshed when older than this. */
    ssoDiscoveryMaxAgeSeconds: intFromEnv(0, 604_800).default(3600),
    /** A login attempt (state, nonce, PKCE verifier) expires after this. */
    loginTransactionTtlSeconds: intFromEnv(30, 3600).default(600),
    /**
     * SSO login starts (each stores a login attempt) one client address may make per window below;
     * beyond it /login answers 429 with Retry-After. Raise it for many people behind one NAT.
     */
    loginStartLimit: intFromEnv(1, 1_000_000).default(20),
    loginStartWindowSeconds: intFromEnv(1, 86_400).default(60),
    /** Login attempts one browser (its binding cookie) may have pending; a new start evicts the oldest beyond it. */
    loginMaxPendingPerBrowser: intFromEnv(1, 100).default(5),
    /** Browser sessions end after this long without a request... */
    sessionIdleMinutes: intFromEnv(1, 43_200).default(480),
    /** ...and this long after login, whatever the activity. */
    sessionAbsoluteHours: intFromEnv(1, 8760).default(24),
    /**
     * Where the management API, pages and SSO (Express) run: `worker`, an isolate of their own, so that
     * the hot paths' isolate never sees an Express request (see src/management/worker.ts); `inline`, the
     * main thread. An in-memory SQLite database always runs inline.
     */
    managementIsolate: z.enum(['worker', 'inline']).default('worker'),
    /**
     * Check every management API answer against the response schema its route declares, and answer 500
     * (logged) on a mismatch. For tests: set by test/support/app.ts; off in production, where it costs nothing.
     */
    validateResponses: booleanFromEnv.default(false),
  })
  .strict();

export type Config = z.output<typeof configSchema> & {
  publicUrl: string;
  /** Whether publicUrl was set (file or TRACKGATE_PUBLIC_URL) rather than derived from the port: the CLI's links depend on it (src/instance/public-url.ts). */
  publicUrlConfigured: boolean;
  dataDir: string;
};
export type ConfigInput = z.input<typeof configSchema>;

/** Environment variable name for each config key: camelCase → TRACKGATE_SNAKE_CASE. */
export function envName(key: string): string {
  return 'TRACKGATE_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

const ENV_KEYS = new Map(Object.keys(configSchema.shape).map((k) => [envName(k), k]));
/** Variables that belong to the test and benchmark tooling, not to the service. */
const NON_SERVICE_ENV = /^TRACKGATE_(TEST|BENCH)_/;

/** The setting whose name is closest to a mistyped one (at most two edits away, or one naming the same words), for "did you mean". */
function nearestEnvName(name: string): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const known of ENV_KEYS.keys()) {
    const d = editDistance(name, known, bestDistance);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, with transpositions counted as one edit (PROT → PORT), given up past `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  const width = b.length + 1;
  // Three rows of the table: two rows back (for transpositions), the previous one, the current one.
  let prev2 = new Int32Array(width);
  let prev = Int32Array.from({ length: width }, (_, j) => j);
  let row = new Int32Array(width);
  for (let i = 1; i <= a.length; i++) {
    row[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let v = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) v = Math.min(v, (prev2[j - 2] ?? 0) + 1);
      row[j] = v;
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin >= limit) return limit;
    [prev2, prev, row] = [prev, row, prev2];
  }
  return prev[b.length] ?? limit;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${path}: must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Folder holding default.json and optional local.json; `TRACKGATE_CONFIG_DIR` overrides it. */
  configDir?: string;
  /** Applied last (tests). */
  overrides?: ConfigInput;
}

/**
 * Loads config/default.json, then config/local.json, then TRACKGATE_* variables,
 * then explicit overrides, and validates the result. Any problem throws a
 * ConfigError that names the offending key or variable.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const configDir = resolve(env.TRACKGATE_CONFIG_DIR ?? options.configDir ?? 'config');
  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  for (const name of ['default.json', 'local.json']) {
    const path = resolve(configDir, name);
    if (!existsSync(path)) continue;
    for (const [k, v] of Object.entries(readConfigFile(path))) {
      merged[k] = v;
      origin.set(k, `${path} key "${k}"`);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('TRACKGATE_') || name === 'TRACKGATE_CONFIG_DIR' || NON_SERVICE_ENV.test(name)) continue;
    const key = ENV_KEYS.get(name);
    if (!key) {
      const near = nearestEnvName(name);
      throw new ConfigError(`unknown environment variable ${name}${near ? `: did you mean ${near}?` : ' (see the README\'s configuration table)'}`);
    }
    if (value === undefined || value === '') continue;
    merged[key] = value;
    origin.set(key, `environment variable ${name}`);
  }
  for (const [k, v] of Object.entries(options.overrides ?? {})) {
    merged[k] = v;
    origin.set(k, `option "${k}"`);
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${origin.get(k) ?? k}: unknown setting`).join('; ');
      }
      const key = String(issue.path[0] ?? '');
      return `${origin.get(key) ?? envName(key)}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const cfg = result.data;
  const dataDir = resolve(
    cfg.dataDir ?? (cfg.databaseUrl.startsWith('sqlite:') && cfg.databaseUrl !== 'sqlite::memory:' ? resolve(cfg.databaseUrl.slice('sqlite:'.length), '..') : 'data'),
  );
  const publicUrl = cfg.publicUrl ?? `http://localhost:${cfg.port}`;
  return { ...cfg, publicUrl, publicUrlConfigured: cfg.publicUrl !== undefined, dataDir };
}
