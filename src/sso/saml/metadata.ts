import { DOMParser } from '@xmldom/xmldom';
import xpath from 'xpath';
import type { FieldProblem } from '../../errors/app-error.ts';
import { toPem } from './settings.ts';

/** The largest IdP metadata document read (pasted or fetched); a real one with a few certificates is under 20 KB. */
export const SAML_METADATA_MAX_BYTES = 256 * 1024;

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

export interface IdpMetadata {
  entityId: string;
  ssoUrl: string;
  certificates: string[];
}

export type MetadataResult = { ok: true; metadata: IdpMetadata } | { ok: false; problems: FieldProblem[] };

const select = (expr: string, node: Node): Node[] => xpath.select(expr, node) as Node[];

/**
 * Reads an IdP's SAML metadata: the EntityDescriptor's entityID, the IDPSSODescriptor's SingleSignOnService
 * (HTTP-Redirect preferred, the binding trackgate sends AuthnRequests with; HTTP-POST's location otherwise,
 * which IdPs serve on the same URL) and every signing certificate (KeyDescriptor use="signing" or no use).
 * Bounded: the size is capped, and a DOCTYPE is refused outright — xmldom resolves no external entity, but
 * a document that declares any has no business being metadata (entity expansion, XXE probes).
 * `field` names the input the problems are reported on (metadata_xml or metadata_url).
 */
export function parseIdpMetadata(xml: string, field: string): MetadataResult {
  const problem = (code: string, message: string): MetadataResult => ({ ok: false, problems: [{ field, code, message }] });
  if (Buffer.byteLength(xml, 'utf8') > SAML_METADATA_MAX_BYTES) return problem('metadata_too_large', `the metadata is larger than ${SAML_METADATA_MAX_BYTES / 1024} KB, trackgate's limit for it`);
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) return problem('metadata_doctype', 'the metadata declares a DOCTYPE or entities, which SAML metadata never needs; trackgate refuses it');
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        if (level !== 'warning') throw new Error(message);
      },
    }).parseFromString(xml, 'text/xml') as unknown as Document;
  } catch (err) {
    return problem('metadata_malformed', `the metadata is not well-formed XML (${(err as Error).message.split('\n')[0]?.slice(0, 200) ?? ''})`);
  }
  // Null for an empty document, whatever the DOM typings say.
  const root = doc.documentElement as Element | null;
  if (!root || root.localName !== 'EntityDescriptor') {
    return problem('metadata_not_idp', 'the metadata is not a SAML EntityDescriptor (an EntitiesDescriptor of many IdPs is not taken: download the metadata of this one application)');
  }
  const entityId = root.getAttribute('entityID')?.trim() ?? '';
  const problems: FieldProblem[] = [];
  if (!entityId) problems.push({ field, code: 'metadata_entity_id_missing', message: 'the EntityDescriptor has no entityID' });
  const idp = select("./*[local-name()='IDPSSODescriptor']", root)[0] as Element | undefined;
  if (!idp) return { ok: false, problems: [...problems, { field, code: 'metadata_not_idp', message: 'the metadata has no IDPSSODescriptor: it describes no identity provider (is it a service provider\'s metadata?)' }] };
  const services = select("./*[local-name()='SingleSignOnService']", idp) as Element[];
  const pick = (binding: string) => services.find((s) => s.getAttribute('Binding') === binding)?.getAttribute('Location')?.trim();
  const ssoUrl = pick(REDIRECT) ?? pick(POST) ?? '';
  if (!ssoUrl) problems.push({ field, code: 'metadata_sso_url_missing', message: 'the IDPSSODescriptor has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding' });
  else if (!/^https?:\/\//i.test(ssoUrl)) problems.push({ field, code: 'metadata_sso_url_invalid', message: `the SingleSignOnService location "${ssoUrl.slice(0, 200)}" is not an http(s) URL` });
  const certificates: string[] = [];
  for (const kd of select("./*[local-name()='KeyDescriptor']", idp) as Element[]) {
    const use = kd.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const node of select(".//*[local-name()='X509Certificate']", kd)) {
      const pem = toPem(node.textContent ?? '');
      if (!pem) problems.push({ field, code: 'metadata_certificate_invalid', message: 'a signing X509Certificate of the metadata is not a valid certificate' });
      else if (!certificates.includes(pem)) certificates.push(pem);
    }
  }
  if (certificates.length === 0 && !problems.some((p) => p.code === 'metadata_certificate_invalid')) problems.push({ field, code: 'metadata_certificate_missing', message: 'the metadata has no signing certificate (KeyDescriptor use="signing" with an X509Certificate)' });
  if (problems.length) return { ok: false, problems };
  return { ok: true, metadata: { entityId, ssoUrl, certificates } };
}
