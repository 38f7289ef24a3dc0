/** The domain part of an email address, lower-case, or null. */
export function emailDomain(email: string): string | null {
  const at = email.lastIndexOf('@');
  return at > 0 && at < email.length - 1 ? email.slice(at + 1).toLowerCase() : null;
}

/**
 * Of SSO's storage (src/sso), the home-realm lookup of a domain: declared here by shape, since SSO
 * provisions users through this folder and not the reverse.
 */
export interface DomainClaims {
  connectionForDomain(domain: string): Promise<{ org_id: string } | undefined>;
}

/**
 * Whether another organization's SSO connection claims this email's domain. Such an address is that
 * organization's to create (emails are unique on the instance): anyone else who provisions it squats
 * it. The answer to the caller must not say which organization, nor that one exists ("cannot be used").
 * A domain of the caller's own organization, or one nobody claims, is fine.
 */
export async function emailDomainClaimedElsewhere(repos: { sso: DomainClaims }, email: string, orgId: string): Promise<boolean> {
  const domain = emailDomain(email);
  if (!domain) return false;
  const owner = await repos.sso.connectionForDomain(domain);
  return owner !== undefined && owner.org_id !== orgId;
}
