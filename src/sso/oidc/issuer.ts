import { isIP } from 'node:net';

/** The placeholder Azure AD / Entra ID multi-tenant discovery documents put in `issuer`. */
export const TENANT_PLACEHOLDER = '{tenantid}';

export function isTemplatedIssuer(issuer: string): boolean {
  return issuer.includes(TENANT_PLACEHOLDER);
}

/** The issuer a token of tenant `tid` must carry under a templated issuer. */
export function fillTenant(template: string, tid: string): string {
  return template.split(TENANT_PLACEHOLDER).join(tid);
}

/**
 * Whether the issuer the admin entered is an instance of the template the
 * discovery document answered with: `.../organizations/v2.0` (or `common`, or
 * a tenant GUID) against `.../{tenantid}/v2.0`. Only one path segment may
 * stand in for the placeholder.
 */
export function enteredIssuerMatchesTemplate(entered: string, template: string): boolean {
  const i = template.indexOf(TENANT_PLACEHOLDER);
  if (i < 0 || template.indexOf(TENANT_PLACEHOLDER, i + 1) >= 0) return false;
  const before = template.slice(0, i);
  const after = template.slice(i + TENANT_PLACEHOLDER.length);
  const e = entered.replace(/\/+$/, '');
  const a = after.replace(/\/+$/, '');
  if (!e.startsWith(before) || !e.endsWith(a)) return false;
  const middle = e.slice(before.length, e.length - a.length);
  return /^[A-Za-z0-9._-]+$/.test(middle);
}

/** Azure tenant IDs are GUIDs; also accept them in any case, compare lower-case. */
export const TENANT_ID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

export interface UrlPolicy {
  /** TRACKGATE_ALLOW_HTTP_ISSUERS: development and tests only, and then only on loopback. */
  allowHttpIssuers: boolean;
}

/**
 * Why a URL the IdP or the admin gave may not be used, or null when it may:
 * https always; http only with allowHttpIssuers and only on a loopback host.
 */
export function urlProblem(value: string, policy: UrlPolicy, what: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${what} "${value}" is not a URL`;
  }
  if (url.username || url.password) return `${what} must not contain a user name or password`;
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') {
    if (!policy.allowHttpIssuers) return `${what} uses http://; only https:// is accepted (http:// is allowed only in development with TRACKGATE_ALLOW_HTTP_ISSUERS=true, on loopback)`;
    if (!isLoopbackHost(url.hostname)) return `${what} uses http:// on a non-loopback host; even with TRACKGATE_ALLOW_HTTP_ISSUERS=true only 127.0.0.1/localhost may use http://`;
    return null;
  }
  return `${what} must be an https:// URL`;
}
