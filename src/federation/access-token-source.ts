import type { Principal } from '../auth/principal.ts';
import type { Store } from '../db/store.ts';
import type { CredentialSource } from '../keys/key-verifier.ts';
import type { Logger } from '../log/logger.ts';
import type { AccessTokensRepository } from './access-tokens.repository.ts';
import type { FederationReplaysRepository } from './replays.repository.ts';

/** A service account's identity as its access tokens carry it (ServiceAccountsService.principalFor, wired in src/core.ts). */
type AccessTokenPrincipal = (orgId: string, serviceAccountId: string) => Promise<Principal | null>;

/**
 * Federation access tokens (`tga-…`) on the API key path: given a token's hash, its service account's
 * identity, as that account's API key would give it but `via: 'access_token'` and no key id (nothing to
 * record as last used). Null when the account is gone or its organization is no longer enterprise;
 * revocation and expiry are the verifier's to judge, on every request.
 */
export function accessTokenSource(repos: { accessTokens: AccessTokensRepository }, principalFor: AccessTokenPrincipal): CredentialSource {
  return async (hash) => {
    const row = await repos.accessTokens.findByHash(hash);
    if (!row) return null;
    const principal = await principalFor(row.org_id, row.service_account_id);
    if (!principal) return null;
    return { principal, revokedAt: row.revoked_at === null ? null : Date.parse(row.revoked_at), expiresAt: Date.parse(row.expires_at) };
  };
}

/** Expired access tokens are kept this long (a day) so that one presented just after its expiry is still answered "expired", not "unknown". */
const EXPIRED_KEPT_MS = 86_400_000;

/**
 * Housekeeping of federation's rows, in the isolate that migrates: access tokens expired for more than a day
 * and replay records past their assertion's expiry. Every `intervalMs` (default 10 minutes); a failure is
 * logged and tried again at the next tick.
 */
export class FederationPruner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly store: Store<{ accessTokens: AccessTokensRepository; federationReplays: FederationReplaysRepository }>,
    private readonly logger: Logger,
    private readonly intervalMs = 600_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.prune().finally(() => (this.running = null));
    }, this.intervalMs);
    this.timer.unref();
  }

  async prune(now = Date.now()): Promise<{ accessTokens: number; replays: number }> {
    try {
      const accessTokens = await this.store.repos.accessTokens.pruneExpired(new Date(now - EXPIRED_KEPT_MS).toISOString());
      const replays = await this.store.repos.federationReplays.pruneExpired(new Date(now).toISOString());
      if (accessTokens + replays > 0) this.logger.debug({ access_tokens: accessTokens, replays }, 'federation: expired rows pruned');
      return { accessTokens, replays };
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'federation: pruning expired access tokens and replay records failed');
      return { accessTokens: 0, replays: 0 };
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
