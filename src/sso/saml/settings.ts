import { X509Certificate } from 'node:crypto';
import type { ConnectionRow } from '../sso.repository.ts';

/** A SAML connection's settings (sso_connections.saml, JSON): the IdP as its metadata describes it, and what trackgate demands of it. */
export interface SamlSettings {
  /** The IdP's entity ID: the Issuer of its responses (also the row's `issuer`). */
  entity_id: string;
  /** Where the AuthnRequest goes (HTTP-Redirect binding). */
  sso_url: string;
  /** The IdP's signing certificates, PEM; several while the IdP rolls its key over, each one accepted. */
  certificates: string[];
  /** Where the metadata came from, when from a URL (refetched on an edit that names it again). */
  metadata_url: string | null;
  /** Assertions must carry a valid signature. */
  want_assertions_signed: boolean;
  /** The whole response must carry a valid signature. Never both false (refused on save). */
  want_response_signed: boolean;
  /** Accept a response no sign-in of ours asked for (no InResponseTo): off by default, it cannot be bound to a browser. */
  allow_idp_initiated: boolean;
}

/** The defaults of a new SAML connection's claim mapping: the attribute names Okta and Entra ID's SAML apps send when configured as the README says. */
export const SAML_DEFAULT_CLAIMS = { email: 'email', name: 'name', username: 'username', groups: 'groups' };

/** The protocol of a connection (rows before migration 013 are OIDC). */
export function connectionKind(row: Pick<ConnectionRow, 'kind'>): 'oidc' | 'saml' {
  return row.kind ?? 'oidc';
}

export function samlSettingsOf(row: Pick<ConnectionRow, 'saml'>): SamlSettings | null {
  return row.saml ? (JSON.parse(row.saml) as SamlSettings) : null;
}

/** A certificate as base64 DER (what metadata and admins paste) or PEM, as PEM; null when it is not an X.509 certificate. */
export function toPem(cert: string): string | null {
  const body = cert
    .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
    .replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length > 16_384) return null;
  const pem = `-----BEGIN CERTIFICATE-----\n${body.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  try {
    new X509Certificate(pem);
    return pem;
  } catch {
    return null;
  }
}

/** What the views show of a certificate: enough to compare with the IdP's console, nothing secret. */
export function certificateInfo(pem: string): { fingerprint_sha256: string; subject: string; not_after: string; expired: boolean } {
  const c = new X509Certificate(pem);
  const notAfter = new Date(c.validTo);
  return { fingerprint_sha256: c.fingerprint256, subject: c.subject.replace(/\n/g, ', '), not_after: notAfter.toISOString(), expired: notAfter.getTime() <= Date.now() };
}
