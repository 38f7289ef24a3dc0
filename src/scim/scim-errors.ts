import type { Response } from 'express';
import type { AppError } from '../errors/app-error.ts';
import type { ErrorCode } from '../errors/catalogue.ts';
import { httpHeadersOf, httpStatusOf } from '../http/errors.ts';

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';
export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** RFC 7644 §3.12's scimType of the catalogue codes that have one. */
const SCIM_TYPES: Partial<Record<ErrorCode, string>> = {
  scim_invalid_filter: 'invalidFilter',
  scim_invalid_syntax: 'invalidSyntax',
  bad_request: 'invalidSyntax',
  scim_invalid_value: 'invalidValue',
  validation_failed: 'invalidValue',
  scim_invalid_path: 'invalidPath',
  scim_no_target: 'noTarget',
  scim_mutability: 'mutability',
  scim_too_many: 'tooMany',
  scim_uniqueness: 'uniqueness',
  name_taken: 'uniqueness',
  username_taken: 'uniqueness',
  user_taken: 'uniqueness',
  email_taken: 'uniqueness',
  email_unavailable: 'uniqueness',
};

/**
 * The SCIM surface's one error renderer (RFC 7644 §3.12): `schemas`, `status` as a string (Okta's and
 * Entra ID's validators insist), `scimType` where one applies, `detail` (the catalogue message; a 5xx
 * says nothing of its cause). Same status and Retry-After as every other surface (src/http/errors.ts);
 * the request id is in the X-Request-Id header.
 */
export function sendScimError(err: AppError, res: Response): void {
  const status = httpStatusOf(err);
  const headers = httpHeadersOf(err);
  if (headers?.['Retry-After']) res.setHeader('Retry-After', headers['Retry-After']);
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="trackgate-scim"');
  const scimType = SCIM_TYPES[err.code];
  const detail = err.problems?.length ? `${err.message}: ${err.problems.map((p) => (p.field ? `${p.field} ${p.message}` : p.message)).join('; ')}` : err.message;
  res
    .status(status)
    .setHeader('Content-Type', SCIM_CONTENT_TYPE)
    .send(JSON.stringify({ schemas: [SCIM_ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail }));
}
