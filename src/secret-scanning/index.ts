import type { AuditService } from '../audit/audit.service.ts';
import type { CacheInvalidator } from '../auth/invalidation.ts';
import type { Config } from '../config/config.ts';
import type { Store } from '../db/store.ts';
import type { Logger } from '../log/logger.ts';
import type { ScannerKeysFetcher } from './scanner-keys.ts';
import { SECRET_SCANNING_PREFIX } from './signature-headers.ts';
import { SecretScanningService } from './secret-scanning.service.ts';
import type { SecretScanningRepos, TeamNoticeAccess } from './secret-scanning.service.ts';

/** A report's raw body is kept (not parsed as JSON) under this prefix, up to this size (createExpressApp's rawBodies). */
export const secretScanningRawBody = { prefix: SECRET_SCANNING_PREFIX, limit: '256kb' } as const;

export interface SecretScanningDeps {
  config: Pick<Config, 'secretScanningKeysUrl'>;
  logger: Logger;
  store: Store<SecretScanningRepos>;
  audit: AuditService;
  invalidator: CacheInvalidator;
  teams: TeamNoticeAccess;
  /** SSO's IdpFetcher: the one fetcher of documents from outside. */
  fetcher: ScannerKeysFetcher;
}

export function createSecretScanning(deps: SecretScanningDeps): SecretScanningService {
  return new SecretScanningService(deps.store, deps.audit, deps.invalidator, deps.teams, deps.fetcher, { keysUrl: deps.config.secretScanningKeysUrl }, deps.logger);
}
