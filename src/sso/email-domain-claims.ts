import type { Repositories } from '../db/store.ts';
import { emailDomain } from './public-mail-domains.ts';
import { SsoRepository } from './sso.repository.ts';

/**
 * Whether another organization's SSO connection claims this email's domain. Such an address is that
 * organization's to create (emails are unique on the instance): anyone else who provisions it squats
 * it. The answer to the caller must not say which organization, nor that one exists ("cannot be used").
 * A domain of the caller's own organization, or one nobody claims, is fine.
 */
export async function emailDomainClaimedElsewhere(repos: Repositories, email: string, orgId: string): Promise<boolean> {
  const domain = emailDomain(email);
  if (!domain) return false;
  const owner = await new SsoRepository(repos.db).connectionForDomain(domain);
  return owner !== undefined && owner.org_id !== orgId;
}
