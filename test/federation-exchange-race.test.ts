/**
 * A trust rule deleted while an exchange under it is in flight (TokenExchangeService): the rule is read
 * before the exchange's transaction, so its deletion may commit in between, and that deletion revokes the
 * rule's tokens without the one about to be written. The exchange reads the rule again inside its
 * transaction, under the service account's row lock that the deletions take too (on PostgreSQL the lock
 * orders the two; on SQLite transactions are serial). Here the repositories are stood in for, so that the
 * deletion lands exactly between the two reads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { AuditService } from '../src/audit/audit.service.ts';
import type { Store } from '../src/db/store.ts';
import { AppError } from '../src/errors/app-error.ts';
import type { FederatedCredentialRow } from '../src/federation/federated-credentials.repository.ts';
import { TokenExchangeService } from '../src/federation/token-exchange.service.ts';
import type { TokenExchangeRepos } from '../src/federation/token-exchange.service.ts';
import type { WorkloadIssuers } from '../src/federation/workload-issuers.ts';
import { createLogger } from '../src/log/logger.ts';

const ISS = 'https://ci.example.test';
const SUB = 'repo:acme/train:ref:refs/heads/main';

async function setup(deleteBeforeCommit: boolean) {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const publicJwk = await importJWK(await exportJWK(publicKey), 'ES256');
  const rule: FederatedCredentialRow = { id: 'r1', org_id: 'o1', service_account_id: 'sa1', name: 'ci', issuer: ISS, audience: 'acme', subject: SUB, conditions: '{}', created_by: null, created_at: '2026-01-01T00:00:00.000Z' };
  let ruleExists = true;
  const order: string[] = [];
  const issued: unknown[] = [];
  const repos = {
    federatedCredentials: {
      findByIssuer: () => Promise.resolve(ruleExists ? [rule] : []),
      findById: () => {
        order.push('findById');
        return Promise.resolve(ruleExists ? rule : undefined);
      },
    },
    accessTokens: { insert: (row: unknown) => Promise.resolve(void issued.push(row)) },
    federationReplays: { remember: () => Promise.resolve(true) },
    serviceAccounts: { findById: () => Promise.resolve({ id: 'sa1', username: 'trainer', name: 'trainer', team_name: 'ml' }) },
    orgs: { findById: () => Promise.resolve({ id: 'o1', slug: 'acme', plan: 'enterprise' }), findBySlug: () => Promise.resolve(undefined) },
    keys: {
      lockOwner: () => {
        order.push('lockOwner');
        return Promise.resolve();
      },
    },
    audit: {},
  };
  const store = {
    repos,
    transaction: <T>(fn: (r: typeof repos) => Promise<T>): Promise<T> => {
      // The rule's deletion (and its revocation of the rule's live tokens) commits just before this transaction.
      if (deleteBeforeCommit) ruleExists = false;
      return fn(repos);
    },
  } as unknown as Store<TokenExchangeRepos>;
  const issuers = { keysFor: () => Promise.resolve(() => Promise.resolve(publicJwk)) } as unknown as WorkloadIssuers;
  const audit = { record: () => Promise.resolve() } as unknown as AuditService;
  const exchange = new TokenExchangeService(store, issuers, audit, createLogger({ level: 'silent' }), new RateLimiterMemory({ points: 100, duration: 60 }), {
    accessTokenTtlSeconds: 3600,
    maxAssertionLifetimeSeconds: 86400,
    clockToleranceSeconds: 60,
  });
  const assertion = await new SignJWT({ sub: SUB, aud: 'acme', jti: 'j1' }).setProtectedHeader({ alg: 'ES256' }).setIssuer(ISS).setIssuedAt().setExpirationTime('5m').sign(privateKey);
  return { exchange, assertion, issued, order };
}

test('an exchange whose rule is still there issues a token, with the rule read again under the account lock', async () => {
  const { exchange, assertion, issued, order } = await setup(false);
  const r = await exchange.exchange(assertion, { ip: '192.0.2.1', requestId: 'req-1' });
  assert.match(r.accessToken, /^tga-/);
  assert.equal(issued.length, 1);
  assert.deepEqual(order, ['lockOwner', 'findById'], 'the lock is taken before the rule is read again');
});

test('a rule deleted between the match and the commit issues nothing: invalid_grant', async () => {
  const { exchange, assertion, issued } = await setup(true);
  await assert.rejects(
    () => exchange.exchange(assertion, { ip: '192.0.2.1', requestId: 'req-2' }),
    (err: unknown) => err instanceof AppError && err.code === 'oauth_invalid_grant',
  );
  assert.equal(issued.length, 0, 'no access token was written for a deleted rule');
});
