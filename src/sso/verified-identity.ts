import type { EmailEvidence } from './account-linking.ts';

/**
 * Who a sign-in proved to be, whatever the protocol: an OIDC ID token (src/sso/oidc) and a SAML assertion
 * (src/sso/saml) are each read once into this, after every check of their own, and the same rules then
 * decide the account (resolveUser), the team memberships (syncGroups) and a test login's report (dryRun).
 */
export interface VerifiedIdentity {
  protocol: 'oidc' | 'saml';
  /** The OIDC issuer (Azure AD: the tenant's), or the SAML IdP's entity ID. */
  issuer: string;
  /** The OIDC subject, or the SAML NameID. */
  subject: string;
  /** The identity's key (unique per organization) and, for Azure AD, its tenant and object IDs. */
  id: { key: string; tenantId: string | null; objectId: string | null };
  /** The token's claims, or the assertion's attributes (for the test report). */
  claims: Record<string, unknown>;
  /** The mapped email when it passes the API's own email rule; null otherwise. */
  email: string | null;
  /** What vouched for the email (null: nothing, so it links no existing account). */
  evidence: EmailEvidence | null;
  /** The mapped groups claim or attribute. */
  groups: {
    /** The claim or attribute name read. */
    name: string;
    /** Whether the token or assertion carried it at all. */
    present: boolean;
    /** Azure AD's groups overage: the token says there are groups but does not list them (memberships then stay as they are). */
    overage: boolean;
    values: string[];
  };
  /** The mapped username and display name, when given. */
  username: string | null;
  name: string | null;
}

/** The strings of a claim or attribute value: a string, or the strings of a list. */
export function stringValues(raw: unknown): string[] {
  return Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : typeof raw === 'string' ? [raw] : [];
}

/** A claim or attribute as one trimmed string, or null (absent, empty, or not a string). */
export function singleString(raw: unknown): string | null {
  return typeof raw === 'string' && raw.trim() ? raw.trim() : null;
}
