import assert from 'node:assert/strict';
import type { TestApp, TestResponse } from './app.ts';

export const SCIM_JSON = 'application/scim+json';
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** A SCIM client as an IdP is one: Bearer token, application/scim+json both ways, the IdP's own User-Agent. */
export interface ScimClient {
  token: string;
  baseUrl: string;
  request<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse<T>>;
}

export const OKTA_AGENT = 'Okta SCIM Client 1.0.0';
export const ENTRA_AGENT = 'Microsoft.Identity.Provisioning';

/** Creates a SCIM token for `org` through the management API (as an org admin would) and a client using it. */
export async function scimClientFor(app: TestApp, org: string, adminKey: string, options: { name?: string; userAgent?: string; prefix?: string } = {}): Promise<ScimClient & { tokenId: string }> {
  const r = await app.request('POST', `/gateway/v1/orgs/${org}/scim/tokens`, { key: adminKey, body: { name: options.name ?? 'idp' } });
  assert.equal(r.status, 201, r.text);
  app.keys.add(r.body.token);
  return { ...scimClient(app, r.body.token, options), tokenId: r.body.id };
}

/** A client for an existing SCIM token; `prefix` is /scim/v2 unless told (Okta's wizard may use /scim). */
export function scimClient(app: TestApp, token: string, options: { userAgent?: string; prefix?: string } = {}): ScimClient {
  const prefix = options.prefix ?? '/scim/v2';
  return {
    token,
    baseUrl: app.url + prefix,
    async request(method, path, body, headers = {}) {
      const h: Record<string, string> = { authorization: `Bearer ${token}`, accept: `${SCIM_JSON}; charset=utf-8`, 'user-agent': options.userAgent ?? OKTA_AGENT, ...headers };
      if (body !== undefined) h['content-type'] ??= SCIM_JSON;
      const res = await fetch(app.url + prefix + path, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), redirect: 'manual' });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.status, headers: res.headers, body: parsed as never, text };
    },
  };
}

/** Asserts a SCIM error answer: RFC 7644 §3.12's shape, `status` a string, the content type. */
export function assertScimError(r: TestResponse, status: number, scimType?: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/scim\+json/);
  assert.deepEqual(r.body.schemas, [ERROR_SCHEMA], r.text);
  assert.equal(r.body.status, String(status), r.text);
  assert.equal(typeof r.body.detail, 'string');
  if (scimType !== undefined) assert.equal(r.body.scimType, scimType, r.text);
}
