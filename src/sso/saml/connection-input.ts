import type { FieldProblem } from '../../errors/app-error.ts';
import { IdpFetchError } from '../oidc/idp-fetch.ts';
import type { IdpFetcher } from '../oidc/idp-fetch.ts';
import { parseIdpMetadata } from './metadata.ts';
import { toPem } from './settings.ts';
import type { SamlSettings } from './settings.ts';

/** What an admin gives for a SAML connection's IdP side: metadata (URL or XML), or its three facts by hand, and the signing policy. */
export interface SamlInput {
  metadata_url?: string | undefined;
  metadata_xml?: string | undefined;
  entity_id?: string | undefined;
  sso_url?: string | undefined;
  certificates?: string[] | undefined;
  want_assertions_signed?: boolean | undefined;
  want_response_signed?: boolean | undefined;
  allow_idp_initiated?: boolean | undefined;
}

export const SAML_INPUT_FIELDS = ['metadata_url', 'metadata_xml', 'entity_id', 'sso_url', 'certificates', 'want_assertions_signed', 'want_response_signed', 'allow_idp_initiated'] as const;

export type SettingsResult = { ok: true; settings: SamlSettings } | { ok: false; problems: FieldProblem[] };

/**
 * The SAML settings an input makes, over the current ones (an edit) or from nothing (a creation): metadata
 * read first (pasted XML, or fetched through the one IdP fetcher: bounded, public addresses only), then any
 * field given by hand over it. Every problem is reported, field by field; nothing is half-applied.
 */
export async function resolveSamlSettings(input: SamlInput, current: SamlSettings | null, fetcher: IdpFetcher): Promise<SettingsResult> {
  const problems: FieldProblem[] = [];
  let fromMetadata: { entityId: string; ssoUrl: string; certificates: string[] } | null = null;
  if (input.metadata_xml !== undefined && input.metadata_url !== undefined) {
    problems.push({ field: 'metadata_xml', code: 'metadata_ambiguous', message: 'give metadata_xml or metadata_url, not both' });
  } else if (input.metadata_xml !== undefined) {
    const r = parseIdpMetadata(input.metadata_xml, 'metadata_xml');
    if (r.ok) fromMetadata = r.metadata;
    else problems.push(...r.problems);
  } else if (input.metadata_url !== undefined) {
    try {
      const res = await fetcher.fetch('saml_metadata', input.metadata_url, { headers: { accept: 'application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8' } });
      if (res.status !== 200) problems.push({ field: 'metadata_url', code: 'metadata_http_status', message: `the metadata URL answered HTTP ${res.status}, not 200 (redirects are not followed: give the final URL)` });
      else {
        const r = parseIdpMetadata(await res.text(), 'metadata_url');
        if (r.ok) fromMetadata = r.metadata;
        else problems.push(...r.problems);
      }
    } catch (err) {
      if (!(err instanceof IdpFetchError)) throw err;
      problems.push({ field: 'metadata_url', code: `metadata_${err.problem === 'not_json' ? 'not_xml' : err.problem}`, message: err.message });
    }
  }
  const certificates: string[] = [];
  if (input.certificates !== undefined) {
    input.certificates.forEach((c, i) => {
      const pem = toPem(c);
      if (!pem) problems.push({ field: `certificates.${i}`, code: 'certificate_invalid', message: 'is not an X.509 certificate (PEM, or its base64 body)' });
      else if (!certificates.includes(pem)) certificates.push(pem);
    });
  }
  // The SSO URL is where browsers are sent and what the Test login page links to: a javascript: or data: URL
  // there would run in trackgate's origin (metadata's own is checked as it is read).
  if (input.sso_url !== undefined && !/^https?:\/\/[^/]/i.test(input.sso_url.trim())) {
    problems.push({ field: 'sso_url', code: 'sso_url_invalid', message: "the IdP's single sign-on URL must be an http(s) URL" });
  }
  const entityId = input.entity_id?.trim() ?? fromMetadata?.entityId ?? current?.entity_id;
  const ssoUrl = input.sso_url?.trim() ?? fromMetadata?.ssoUrl ?? current?.sso_url;
  const certs = input.certificates !== undefined ? certificates : (fromMetadata?.certificates ?? current?.certificates ?? []);
  if (!problems.some((p) => p.field.startsWith('metadata'))) {
    if (!entityId) problems.push({ field: 'entity_id', code: 'required', message: "the IdP's entity ID is needed: give metadata_url or metadata_xml, or entity_id, sso_url and certificates" });
    // An entity ID is a URI of at most 1024 characters (SAML core 8.3.6): no "|" (the separator of the identity
    // key saml|<entity ID>|<NameID>, so that no entity ID + NameID can spell another's), no spaces or controls.
    else if (entityId.length > 1024 || /[|\s\p{Cc}]/u.test(entityId)) problems.push({ field: 'entity_id', code: 'entity_id_invalid', message: "the IdP's entity ID must be a URI of at most 1024 characters, without spaces or \"|\"" });
    if (!ssoUrl) problems.push({ field: 'sso_url', code: 'required', message: "the IdP's single sign-on URL is needed" });
    if (certs.length === 0 && input.certificates === undefined) problems.push({ field: 'certificates', code: 'required', message: "the IdP's signing certificate is needed" });
  }
  if (input.certificates !== undefined && input.certificates.length === 0) problems.push({ field: 'certificates', code: 'required', message: 'at least one signing certificate is needed' });
  const wantAssertions = input.want_assertions_signed ?? current?.want_assertions_signed ?? true;
  const wantResponse = input.want_response_signed ?? current?.want_response_signed ?? false;
  // Neither signed would accept any XML anyone posts: one of them must be.
  if (!wantAssertions && !wantResponse) problems.push({ field: 'want_assertions_signed', code: 'signature_required', message: 'signed assertions, signed responses or both must be required; both off would accept unsigned logins' });
  if (problems.length || !entityId || !ssoUrl) return { ok: false, problems };
  return {
    ok: true,
    settings: {
      entity_id: entityId,
      sso_url: ssoUrl,
      certificates: certs,
      metadata_url: input.metadata_url ?? (input.metadata_xml !== undefined ? null : (current?.metadata_url ?? null)),
      want_assertions_signed: wantAssertions,
      want_response_signed: wantResponse,
      allow_idp_initiated: input.allow_idp_initiated ?? current?.allow_idp_initiated ?? false,
    },
  };
}
