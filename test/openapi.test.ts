/**
 * The OpenAPI document served at /gateway/v1/openapi.json: Redocly's recommended rules find nothing
 * (with redocly.yaml), and real answers across the API — successes and errors — match the document:
 * each status is documented for its operation, each body matches the schema the document gives it (ajv,
 * JSON Schema 2020-12 as OpenAPI 3.1 uses), and a method a documented path does not serve is answered
 * 405 with the documented methods in Allow. The point is the document, not the handlers:
 * test/response-schemas.test.ts checks the handlers against their route declarations.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { ERROR_CATALOGUE } from '../src/errors/catalogue.ts';
import { generateKey } from '../src/keys/key-format.ts';
import { basic, dialects, startApp } from './support/app.ts';
import type { RequestOptions, TestApp, TestResponse } from './support/app.ts';
import { USER_SCHEMA, scimClientFor } from './support/scim.ts';
import { idpMetadata, makeKey } from './support/saml-idp.ts';

// ajv-formats is CommonJS: imported from ESM, its plugin is the module's `default`.
const addFormats = ajvFormats.default;

// Its command-line program, by the package's own path (it has no stable programmatic API).
const REDOCLY = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');
const REDOCLY_CONFIG = join(import.meta.dirname, '..', 'redocly.yaml');
// Not localhost: the document names the public URL as its server, and Redocly flags a local one.
const PUBLIC_URL = 'https://gateway.trackgate.test';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}
type OpenApi = { paths: Record<string, Record<string, unknown>> };

/** A JSON pointer's token (RFC 6901). */
const pointer = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Checks answers against the document: the operation of a concrete path and method, the status among its
 * responses, the content type among that response's, the body against its schema.
 */
class DocumentCheck {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: { template: string; pattern: RegExp; params: number }[];
  /** Every documented operation and status an answer matched, for the coverage assertion. */
  readonly seen = new Set<string>();

  constructor(readonly doc: OpenApi) {
    addFormats(this.ajv);
    // The whole document is one schema resource, so the $refs of its schemas (#/components/schemas/Error) resolve.
    this.ajv.addSchema(doc, 'openapi.json');
    this.templates = Object.keys(doc.paths).map((template) => ({
      template,
      pattern: new RegExp('^' + template.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('[^/]+') + '$'),
      params: (template.match(/\{/g) ?? []).length,
    }));
  }

  /** The documented path of a concrete one: a literal path before a template that also matches it. */
  templateOf(path: string): string | undefined {
    return this.templates.filter((t) => t.pattern.test(path)).sort((a, b) => a.params - b.params)[0]?.template;
  }

  check(method: string, url: string, r: TestResponse): void {
    const path = url.split('?')[0] ?? url;
    const what = `${method} ${url} → ${r.status} ${r.text.slice(0, 300)}`;
    const template = this.templateOf(path);
    assert.ok(template, `the document has no path for ${what}`);
    const item = this.doc.paths[template];
    assert.ok(item);
    const op = item[method.toLowerCase()] as Operation | undefined;
    if (!op) {
      // A method the path does not serve: 405, and Allow says what the document says the path serves.
      assert.equal(r.status, 405, `${method} is not documented for ${template}: ${what}`);
      const documented = HTTP_METHODS.filter((m) => m in item).map((m) => m.toUpperCase());
      if (documented.includes('GET')) documented.push('HEAD');
      assert.deepEqual((r.headers.get('allow') ?? '').split(', ').sort(), documented.sort(), `Allow of ${what}`);
      this.validate(`#/components/schemas/${errorSchemaOf(path)}`, r, what);
      this.seen.add(`${method} ${template} 405`);
      return;
    }
    const response = op.responses[String(r.status)];
    assert.ok(response, `status ${r.status} is not documented for ${method} ${template}: ${what}`);
    this.seen.add(`${method} ${template} ${r.status}`);
    const content = response.content;
    if (!content) {
      assert.ok(r.text === '' || !/json/.test(r.headers.get('content-type') ?? ''), `${method} ${template} ${r.status} documents no body: ${what}`);
      return;
    }
    const mediaType = (r.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    assert.ok(mediaType in content, `${method} ${template} ${r.status} documents ${Object.keys(content).join(', ')}, not ${mediaType}: ${what}`);
    this.validate(`#/paths/${pointer(template)}/${method.toLowerCase()}/responses/${r.status}/content/${pointer(mediaType)}/schema`, r, what);
  }

  private validate(ref: string, r: TestResponse, what: string): void {
    let validate = this.validators.get(ref);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `openapi.json${ref}` });
      this.validators.set(ref, validate);
    }
    const ok = validate(r.body);
    assert.ok(ok, `the body does not match the document's schema (${ref}): ${this.ajv.errorsText(validate.errors)}: ${what}`);
  }
}

/** The error body of a path: RFC 7644's under /scim, RFC 6749's under /oidc, trackgate's elsewhere. */
function errorSchemaOf(path: string): string {
  return path.startsWith('/scim') ? 'ScimError' : path.startsWith('/oidc') ? 'OAuthError' : 'Error';
}

/** The problems Redocly's lint finds in a document (its JSON report). */
async function lint(doc: unknown): Promise<{ totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string; location: { pointer?: string }[] }[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'trackgate-openapi-'));
  try {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    // It exits 1 when it finds an error: the report on stdout is what counts.
    const run = await promisify(execFile)(process.execPath, [REDOCLY, 'lint', file, `--config=${REDOCLY_CONFIG}`, '--format=json'], { maxBuffer: 16 * 1024 * 1024 }).catch((err: { stdout?: string; stderr?: string }) => {
      if (!err.stdout) throw new Error(`redocly lint did not run: ${err.stderr ?? String(err)}`);
      return { stdout: err.stdout };
    });
    return JSON.parse(run.stdout) as Awaited<ReturnType<typeof lint>>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const dialect of dialects()) {
  describe(`real answers match the OpenAPI document (${dialect})`, () => {
    let app: TestApp;
    let check: DocumentCheck;
    before(async () => {
      // A low failure limit, so that 429 is a few requests away (the last test).
      app = await startApp(dialect, { publicUrl: PUBLIC_URL, authFailureLimit: 4 });
      check = new DocumentCheck((await app.request<OpenApi>('GET', '/gateway/v1/openapi.json')).body);
    });
    after(() => app.close());

    /** A real request, its status as expected, its answer checked against the document. */
    const call = async (status: number, method: string, path: string, options?: RequestOptions): Promise<TestResponse> => {
      const r = await app.request(method, path, options);
      assert.equal(r.status, status, `${method} ${path}: ${r.text.slice(0, 300)}`);
      check.check(method, path, r);
      return r;
    };

    // The document is the same whatever the database: linted once.
    if (dialect === 'sqlite') {
      test("recommended rules (and redocly.yaml's reasons): no error, no warning", async () => {
        const report = await lint(check.doc);
        const found = report.problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location.map((l) => l.pointer).join(', ')}`);
        assert.deepEqual(found, []);
        assert.deepEqual(report.totals, { ...report.totals, errors: 0, warnings: 0 });
      });

      test('the checks redocly.yaml turns off hold where they should', () => {
        // operation-2xx-response: only the sign-in form posts succeed with a redirect alone.
        // operation-4xx-response: only the probes and the JWKS have no client error.
        const without2xx: string[] = [];
        const without4xx: string[] = [];
        for (const [path, item] of Object.entries(check.doc.paths)) {
          for (const method of HTTP_METHODS) {
            const op = item[method] as Operation | undefined;
            if (!op) continue;
            const statuses = Object.keys(op.responses);
            if (!statuses.some((s) => s.startsWith('2'))) without2xx.push(`${method} ${path}`);
            if (!statuses.some((s) => s.startsWith('4'))) without4xx.push(`${method} ${path}`);
          }
        }
        assert.deepEqual(without2xx.sort(), ['post /login', 'post /login/callback', 'post /login/saml/{id}/acs']);
        assert.deepEqual(without4xx.sort(), ['get /.well-known/jwks.json', 'get /healthz', 'get /readyz']);
      });

      test('every error code of the catalogue is enumerated once, with its meaning', () => {
        const code = (check.doc as unknown as { components: { schemas: { Error: { properties: { error: { properties: { code: { enum: string[]; 'x-enumDescriptions': Record<string, string> } } } } } } } }).components.schemas.Error.properties.error.properties.code;
        assert.deepEqual(code.enum, Object.keys(ERROR_CATALOGUE));
        assert.equal(code['x-enumDescriptions'].not_a_person, ERROR_CATALOGUE.not_a_person.meaning);
      });
    }

    test('the management API: people, organizations, teams, keys, audit', async () => {
      const { org, adminKey, admin } = await app.bootstrap({ plan: 'enterprise' });
      const member = await app.createUser({ org, username: `member-${dialect}` });
      const v1 = '/gateway/v1';
      await call(200, 'GET', `${v1}/me`, { key: adminKey });
      await call(401, 'GET', `${v1}/me`);
      await call(401, 'GET', `${v1}/me`, { key: 'tgp-' + 'x'.repeat(40) });
      await call(400, 'PATCH', `${v1}/me`, { key: adminKey, body: { theme: 'purple' } });
      await call(200, 'PATCH', `${v1}/me`, { key: adminKey, body: { theme: 'dark' } });
      await call(405, 'DELETE', `${v1}/me`, { key: adminKey });
      await call(200, 'GET', `${v1}/orgs/${org}`, { key: adminKey });
      await call(404, 'GET', `${v1}/orgs/no-such-org`, { key: adminKey });
      await call(403, 'PATCH', `${v1}/orgs/${org}`, { key: member.key, body: { name: 'Renamed' } });
      await call(409, 'POST', `${v1}/orgs`, { key: adminKey, body: { slug: org, name: 'Again' } });
      await call(200, 'GET', `${v1}/orgs/${org}/users?limit=2`, { key: adminKey });
      await call(400, 'GET', `${v1}/orgs/${org}/users?limit=0`, { key: adminKey });
      await call(201, 'POST', `${v1}/orgs/${org}/users`, { key: adminKey, body: { email: `new@${org}.example`, username: `new-${dialect}` } });
      await call(200, 'GET', `${v1}/orgs/${org}/users/${member.username}`, { key: adminKey });
      await call(404, 'GET', `${v1}/orgs/${org}/users/nobody`, { key: adminKey });

      const team = `ml-${dialect}`;
      await call(201, 'POST', `${v1}/orgs/${org}/teams`, { key: adminKey, body: { name: team } });
      await call(409, 'POST', `${v1}/orgs/${org}/teams`, { key: adminKey, body: { name: team } });
      await call(400, 'POST', `${v1}/orgs/${org}/teams`, { key: adminKey, body: { name: '' } });
      await call(200, 'GET', `${v1}/orgs/${org}/teams`, { key: adminKey });
      await call(201, 'PUT', `${v1}/teams/${team}/members/${member.username}`, { key: adminKey, body: { role: 'member' } });
      await call(200, 'PUT', `${v1}/teams/${team}/members/${member.username}`, { key: adminKey, body: { role: 'admin' } });
      await call(200, 'GET', `${v1}/teams/${team}`, { key: member.key });
      await call(200, 'GET', `${v1}/teams/${team}/members/${member.username}`, { key: adminKey });
      await call(404, 'GET', `${v1}/teams/${team}/members/${admin}-not`, { key: adminKey });

      const key = await call(201, 'POST', `${v1}/me/keys`, { key: member.key, body: { name: 'laptop' } });
      await call(200, 'GET', `${v1}/me/keys`, { key: member.key });
      await call(200, 'GET', `${v1}/keys/${key.body.id}`, { key: member.key });
      const rotated = await call(201, 'POST', `${v1}/keys/${key.body.id}/rotate`, { key: member.key, body: {} });
      await call(409, 'POST', `${v1}/keys/${key.body.id}/rotate`, { key: member.key, body: {} });
      await call(204, 'DELETE', `${v1}/keys/${rotated.body.id}`, { key: member.key });
      await call(404, 'GET', `${v1}/keys/00000000-0000-4000-8000-000000000000`, { key: member.key });

      await call(200, 'GET', `${v1}/orgs/${org}/audit?limit=5`, { key: adminKey });
      await call(400, 'GET', `${v1}/orgs/${org}/audit?limit=abc`, { key: adminKey });
      await call(200, 'GET', `${v1}/me/leaked-credentials`, { key: member.key });
      await call(400, 'GET', `${v1}/session`, { key: adminKey });
    });

    test('service accounts: their keys refused where only people may act (403)', async () => {
      const { org, adminKey } = await app.bootstrap({ plan: 'enterprise' });
      const v1 = '/gateway/v1';
      const team = `sa-team-${dialect}`;
      await call(201, 'POST', `${v1}/orgs/${org}/teams`, { key: adminKey, body: { name: team } });
      const sa = await call(201, 'POST', `${v1}/teams/${team}/service-accounts`, { key: adminKey, body: { name: 'pipeline' } });
      const saKey = (sa.body as { key: { key: string } }).key.key;
      app.keys.add(saKey);
      await call(200, 'GET', `${v1}/teams/${team}/service-accounts`, { key: adminKey });
      await call(200, 'GET', `${v1}/service-accounts/${sa.body.id}`, { key: adminKey });
      await call(200, 'GET', `${v1}/service-accounts/${sa.body.id}/keys`, { key: adminKey });
      await call(201, 'POST', `${v1}/service-accounts/${sa.body.id}/keys`, { key: adminKey, body: { name: 'second' } });
      await call(200, 'GET', `${v1}/me`, { key: saKey });
      await call(403, 'POST', `${v1}/me/keys`, { key: saKey, body: { name: 'mine' } });
      await call(403, 'GET', `${v1}/service-accounts/${sa.body.id}/keys`, { key: saKey });
      await call(404, 'GET', `${v1}/service-accounts/00000000-0000-4000-8000-000000000000`, { key: adminKey });
      await call(204, 'DELETE', `${v1}/service-accounts/${sa.body.id}`, { key: adminKey });
    });

    test('SSO connections: a configuration refused field by field (422), a validation error (400)', async () => {
      const { org, adminKey } = await app.bootstrap({ plan: 'enterprise' });
      const sso = `/gateway/v1/orgs/${org}/sso`;
      await call(200, 'GET', sso, { key: adminKey });
      // http:// issuers need TRACKGATE_ALLOW_HTTP_ISSUERS: refused before anything is fetched.
      const refused = await call(422, 'POST', sso, { key: adminKey, body: { issuer: 'http://127.0.0.1:9/', client_id: 'x' } });
      assert.equal(refused.body.error.code, 'sso_configuration_invalid');
      await call(400, 'POST', sso, { key: adminKey, body: { client_id: 'x' } });
      await call(404, 'GET', `${sso}/00000000-0000-4000-8000-000000000000`, { key: adminKey });
      await call(405, 'PUT', sso, { key: adminKey });

      // A SAML connection (from pasted IdP metadata): its fields, its SP metadata and its ACS, as documented.
      const metadata_xml = idpMetadata({ entityId: `https://idp.example/openapi-${dialect}`, ssoUrl: 'https://idp.example/sso', keys: [makeKey('openapi-idp')] });
      const saml = await call(201, 'POST', sso, { key: adminKey, body: { kind: 'saml', metadata_xml, domains: [`${org}-saml.example`] } });
      assert.equal(saml.body.kind, 'saml');
      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      await call(200, 'GET', `/login/saml/${saml.body.id}/metadata`);
      await call(404, 'GET', '/login/saml/00000000-0000-4000-8000-000000000000/metadata');
      await call(400, 'POST', `/login/saml/${saml.body.id}/acs`, { rawBody: 'RelayState=x', headers: form });
      await call(400, 'POST', `/login/saml/${saml.body.id}/acs`, { rawBody: 'SAMLResponse=bm90LXhtbA%3D%3D', headers: form });
      await call(404, 'POST', '/login/saml/00000000-0000-4000-8000-000000000000/acs', { rawBody: 'SAMLResponse=x', headers: form });
    });

    test('SCIM (RFC 7644 errors), the token endpoint (RFC 6749 errors) and forward auth', async () => {
      const { org, adminKey } = await app.bootstrap({ plan: 'enterprise' });
      const scim = await scimClientFor(app, org, adminKey);
      const scimCall = async (status: number, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse> => {
        const r = await scim.request(method, path, body, headers);
        assert.equal(r.status, status, `${method} /scim/v2${path}: ${r.text.slice(0, 300)}`);
        check.check(method, `/scim/v2${path}`, r);
        return r;
      };
      await call(200, 'GET', `/gateway/v1/orgs/${org}/scim/tokens`, { key: adminKey });
      const user = await scimCall(201, 'POST', '/Users', { schemas: [USER_SCHEMA], userName: `scim-${dialect}@${org}.example`, emails: [{ value: `scim-${dialect}@${org}.example`, primary: true }], active: true });
      await scimCall(200, 'GET', `/Users/${user.body.id}`);
      await scimCall(200, 'GET', '/Users?filter=' + encodeURIComponent(`userName eq "scim-${dialect}@${org}.example"`));
      await scimCall(400, 'GET', '/Users?filter=' + encodeURIComponent('title co "x"'));
      await scimCall(409, 'POST', '/Users', { schemas: [USER_SCHEMA], userName: `scim-${dialect}@${org}.example` });
      await scimCall(404, 'GET', '/Users/00000000-0000-4000-8000-000000000000');
      await scimCall(401, 'GET', '/Users', undefined, { authorization: `Bearer tgscim-${'x'.repeat(40)}` });
      await scimCall(200, 'GET', '/ServiceProviderConfig');
      await scimCall(204, 'DELETE', `/Users/${user.body.id}`);

      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      await call(400, 'POST', '/oidc/token', { rawBody: 'grant_type=password&assertion=x', headers: form });
      await call(400, 'POST', '/oidc/token', { rawBody: 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=not-a-jwt', headers: form });
      await call(405, 'GET', '/oidc/token');

      await call(200, 'GET', '/auth/verify', { key: adminKey });
      await call(401, 'GET', '/auth/verify');
      await call(400, 'GET', '/auth/verify', { key: adminKey, headers: { 'x-trackgate_user': 'mallory' } });
      await call(200, 'GET', '/healthz');
      await call(405, 'POST', '/healthz');
      await call(200, 'GET', '/readyz');
      await call(200, 'GET', '/.well-known/jwks.json');
      await call(200, 'GET', '/metrics');
      await call(404, 'GET', '/metrics', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    });

    test('too many failed credentials from one address: 429 (last: it blocks this address)', async () => {
      // The management API and the lean paths count in their own isolates (without Redis): each is driven to its 429.
      for (const path of ['/gateway/v1/me', '/auth/verify']) {
        let r: TestResponse | undefined;
        for (let i = 0; i < 10 && r?.status !== 429; i++) {
          // Well-formed unknown keys: a malformed one is refused by its shape alone and not counted.
          r = await app.request('GET', path, { headers: { authorization: basic(generateKey('user').key) } });
          check.check('GET', path, r);
        }
        assert.equal(r?.status, 429, `${path}: ${r?.text ?? ''}`);
      }
    });

    test('the answers above reached every kind of status the document promises', () => {
      const statuses = new Set([...check.seen].map((s) => s.split(' ')[2]));
      for (const s of ['200', '201', '204', '400', '401', '403', '404', '405', '409', '422', '429']) assert.ok(statuses.has(s), `no answer ${s} was checked`);
    });
  });
}
