import type { JWTPayload } from 'jose';
import type { LoginProblemCode } from '../errors/login-problems.ts';
import { isTemplatedIssuer } from './oidc/issuer.ts';
import { isPublicMailDomain } from './public-mail-domains.ts';

/**
 * The rules for tying an IdP identity to an existing trackgate account by
 * email. Linking by email is how an account made before its owner's first
 * SSO sign-in (by an admin, SCIM, or the CLI) meets its IdP identity; it is
 * also the classic account-takeover path: whoever controls an IdP can put any
 * address in a token. So an email links only when every rule holds, and the
 * audit event names the evidence that allowed it. No HTTP here.
 */

/**
 * What vouched that the IdP verified the address. `saml_signed_assertion`: SAML has no verified-email flag;
 * what a SAML connection's address rests on is its IdP's signature over it. That is the trust OIDC's
 * `email_verified` puts in the IdP too (its admin sets that flag as they like), and the nOAuth weakness of
 * Azure's `email` does not carry over: a SAML connection trusts one IdP entity (one Entra tenant's
 * enterprise app), never every tenant of a multi-tenant app. decideEmailLink's other rules still all hold —
 * above all, the address's domain must be one of *this connection's* domains, claimed by this organization
 * only — so a SAML IdP can link an existing account only of its own organization, in its own domains.
 */
export type EmailEvidence = 'email_verified' | 'azure_xms_edov' | 'saml_signed_assertion';

const AZURE_HOSTS = new Set(['login.microsoftonline.com', 'login.microsoftonline.us', 'login.partner.microsoftonline.cn', 'sts.windows.net']);

/** Azure AD / Entra ID: a multi-tenant template, or one of Microsoft's login hosts. */
export function isAzureIssuer(issuer: string): boolean {
  if (isTemplatedIssuer(issuer)) return true;
  try {
    return AZURE_HOSTS.has(new URL(issuer).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/**
 * The evidence that the IdP verified the email, or null. Only the boolean
 * `true` counts: an absent claim, the string "false" or "true", 1 — none.
 * Azure AD sends no `email_verified`, and its `email` is an attribute any
 * tenant admin can set to anything (the "nOAuth" takeovers); its optional
 * claim `xms_edov` (email domain owner verified) is the only evidence it
 * offers, so an Azure connection links by email only when the IdP sends
 * `xms_edov: true`. The connection's domains are no substitute: trackgate does
 * not verify that an organization owns them.
 */
export function emailEvidence(claims: JWTPayload & Record<string, unknown>, azure: boolean): EmailEvidence | null {
  if (claims.email_verified === true) return 'email_verified';
  if (azure && claims.xms_edov === true) return 'azure_xms_edov';
  return null;
}

export interface LinkCandidate {
  username: string;
  orgId: string;
  instanceAdmin: boolean;
  /** How many IdP identities the account has already. */
  identities: number;
}

export interface LinkContext {
  orgSlug: string;
  email: string;
  evidence: EmailEvidence | null;
  /** The organization that owns the SSO connection of this sign-in. */
  connectionOrgId: string;
  /** The email domains the connection serves. */
  connectionDomains: readonly string[];
}

export type LinkDecision = { ok: true; rule: { evidence: EmailEvidence; domain: string } } | { ok: false; code: LoginProblemCode; message: string };

/** Whether an IdP identity may be linked by email to an existing account, and if not, what an admin must do. */
export function decideEmailLink(user: LinkCandidate, ctx: LinkContext): LinkDecision {
  const admin = `an administrator of ${ctx.orgSlug}`;
  const domain = ctx.email.slice(ctx.email.lastIndexOf('@') + 1).toLowerCase();
  // The operator's account reaches every organization, so whoever could link it would own the instance.
  // Not even its own organization's connection links it by email: an admin of that organization could
  // otherwise connect an IdP of their own and claim the operator's address. The operator signs in with a
  // login link (`trackgate login-link`), which takes access to the server.
  if (user.instanceAdmin || user.orgId !== ctx.connectionOrgId) {
    return {
      ok: false,
      code: 'operator_not_linkable',
      message: `the account ${user.username} belongs to the instance operator, which is never linked to an SSO identity by email; the operator signs in with a login link (trackgate login-link)`,
    };
  }
  if (user.identities > 0) {
    return {
      ok: false,
      code: 'account_linked_elsewhere',
      message: `an account with the email ${ctx.email} exists in ${ctx.orgSlug}, but it is already linked to another sign-in identity, and an account is never moved to a new identity by email. ${cap(admin)} can unlink the old identity (Admin → Users, or the API), after which your next sign-in links this one`,
    };
  }
  if (!ctx.evidence) {
    return {
      ok: false,
      code: 'email_unverified',
      message: `an account with the email ${ctx.email} exists in ${ctx.orgSlug}, but your IdP did not say that it verified this address, so trackgate will not link them. ${cap(admin)} must configure the IdP to send "email_verified": true (for Azure AD / Entra ID, the optional claim "xms_edov") with the address in the standard "email" claim`,
    };
  }
  if (!ctx.connectionDomains.includes(domain) || isPublicMailDomain(domain)) {
    return {
      ok: false,
      code: 'email_domain_not_served',
      message: `an account with the email ${ctx.email} exists in ${ctx.orgSlug}, but ${domain} is not one of the email domains of this SSO connection, so trackgate will not link them. ${cap(admin)} must add ${domain} to the connection's domains`,
    };
  }
  return { ok: true, rule: { evidence: ctx.evidence, domain } };
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
