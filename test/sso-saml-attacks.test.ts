/**
 * An attacker against the SAML connections: a browser, an IdP of their own (an admin of their own
 * organization), the network. Signature wrapping variants, comments and CDATA, DTDs and oversized or
 * malformed posts, responses carried to another request, another browser, another connection or another
 * organization, hostile connection settings, session fixation through the ACS, a deactivated account.
 * Every probe is an HTTP exchange with the app; each refusal is a 4xx page and leaves no session.
 * (test/sso-saml.test.ts holds the issue's own list: unsigned, another key, wrapping beside/moved, NameID
 * comment, audience, recipient, expiry, replay, binding, IdP-initiated.)
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deflateRawSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { Browser } from './support/idp/browser.ts';
import { authnRequestOf, b64, buildResponse, idpMetadata, makeKey, sign } from './support/saml-idp.ts';
import type { ResponseOptions, SamlTestKey } from './support/saml-idp.ts';
import { freePort } from './support/net.ts';
import { decodeHtml, signIn, WebBrowser } from './support/web.ts';

let k1: SamlTestKey;
let kB: SamlTestKey;
let evil: SamlTestKey;
let server: Server;
let serverBase: string;
const served = new Map<string, { status?: number; headers?: Record<string, string>; body: string }>();

before(async () => {
  k1 = makeKey('idp-a');
  kB = makeKey('idp-b');
  evil = makeKey('attacker');
  server = createServer((req, res) => {
    const doc = served.get(req.url ?? '');
    if (!doc) return void res.writeHead(404).end();
    res.writeHead(doc.status ?? 200, { 'content-type': 'application/samlmetadata+xml', ...doc.headers }).end(doc.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const ASSERTION = /<saml:Assertion[\s\S]*<\/saml:Assertion>/;
const SIGNATURE = /<ds:Signature[\s\S]*<\/ds:Signature>|<Signature[\s\S]*<\/Signature>/;

for (const dialect of dialects()) {
  describe(`SAML attacks (${dialect})`, () => {
    let app: TestApp;
    let app2: TestApp;
    /** Organization A (the attacker's own, where they are an admin) and B (the victim's). */
    let orgA: string;
    let keyA: string;
    let orgB: string;
    let keyB: string;
    const IDP_A = `https://idp-a.example/${dialect}`;
    const IDP_A2 = `https://idp-a2.example/${dialect}`;
    const IDP_B = `https://idp-b.example/${dialect}`;
    type Conn = { id: string; acs: string; sp: string; domain: string; issuer: string; key: SamlTestKey };
    const conn: Record<'a' | 'init' | 'b', Conn> = {} as never;

    before(async () => {
      const port = await freePort();
      const config = { publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true };
      app = await startApp(dialect, { ...config, port });
      app2 = await startApp(dialect, config, { shareWith: app });
      // A bootstrapped admin operates the instance (every organization is theirs): A's and B's admins are plain org admins.
      const op = await app.bootstrap({ org: `atk-op-${dialect}` });
      [orgA, orgB] = [`atk-a-${dialect}`, `atk-b-${dialect}`];
      for (const slug of [orgA, orgB]) assert.equal((await app.request('POST', '/gateway/v1/orgs', { key: op.adminKey, body: { slug, name: slug, plan: 'enterprise' } })).status, 201);
      keyA = (await app.createUser({ org: orgA, username: `adm-a-${dialect}`, email: `admin@${orgA}.example`, role: 'admin' })).key;
      keyB = (await app.createUser({ org: orgB, username: `adm-b-${dialect}`, email: `admin@${orgB}.example`, role: 'admin' })).key;
      const specs = [
        ['a', orgA, keyA, IDP_A, k1, {}],
        ['init', orgA, keyA, IDP_A2, k1, { allow_idp_initiated: true }],
        ['b', orgB, keyB, IDP_B, kB, {}],
      ] as const;
      for (const [name, org, key, issuer, k, extra] of specs) {
        const domain = `${name}-atk-${dialect}.test`;
        const r = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key, body: { kind: 'saml', metadata_xml: idpMetadata({ entityId: issuer, ssoUrl: `${issuer}/sso`, keys: [k] }), domains: [domain], ...extra } });
        assert.equal(r.status, 201, r.text);
        conn[name] = { id: r.body.id, acs: r.body.saml.acs_url, sp: r.body.saml.sp_entity_id, domain, issuer, key: k };
      }
    });
    after(async () => {
      await app2.close();
      await app.close();
    });

    async function start(browser: Browser, email: string): Promise<string> {
      const r = await browser.get(`/login?email=${encodeURIComponent(email)}`, { 'sec-fetch-site': 'same-origin' });
      assert.equal(r.status, 303, r.text);
      return authnRequestOf(r.location!).id;
    }
    function response(which: keyof typeof conn, over: Partial<ResponseOptions> & { inResponseTo: string | null }) {
      const c = conn[which];
      return buildResponse({ issuer: c.issuer, acs: c.acs, audience: c.sp, nameId: `ada@${c.domain}`, attributes: { email: `ada@${c.domain}` }, ...over });
    }
    const signed = (which: keyof typeof conn, over: Partial<ResponseOptions> & { inResponseTo: string | null }) => sign(response(which, over).xml, conn[which].key, 'assertion');
    const postRaw = (browser: Browser, which: keyof typeof conn, SAMLResponse: string) => browser.post(`/login/saml/${conn[which].id}/acs`, { SAMLResponse });
    const post = (browser: Browser, which: keyof typeof conn, xml: string) => postRaw(browser, which, b64(xml));
    function refused(r: { status: number; text: string; setCookies: string[] }, code?: string) {
      assert.ok(r.status >= 400 && r.status < 500, `a 4xx, not ${r.status}: ${r.text.slice(0, 1000)}`);
      if (code) assert.ok(r.text.includes(code), `expected ${code}: ${r.text.slice(0, 2000)}`);
      assert.ok(!r.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'no session');
    }
    async function me(browser: Browser) {
      const r = await browser.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
      return r.status === 200 ? (JSON.parse(r.text) as { username: string; email?: string }) : null;
    }
    /** The app still answers (nothing above took the process down). */
    async function alive() {
      assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
    }

    describe('signature wrapping and XML tricks', () => {
      test('refused: the forged assertion before the signed one; a forged one in another namespace beside it', async () => {
        const b = new Browser(app.url);
        const id = await start(b, `ada@${conn.a.domain}`);
        const good = signed('a', { inResponseTo: id });
        const forged = ASSERTION.exec(response('a', { inResponseTo: id, nameId: `root@${conn.a.domain}`, attributes: { email: `root@${conn.a.domain}` } }).xml)![0];
        refused(await post(b, 'a', good.replace('<saml:Assertion', `${forged}<saml:Assertion`)), 'saml_signature_invalid');
        const id2 = await start(b, `ada@${conn.a.domain}`);
        const good2 = signed('a', { inResponseTo: id2 });
        // The prefix "saml" bound to another namespace on the forged element: the same local name, not SAML's.
        const alien = forged.replace(id, id2).replace('xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"', 'xmlns:saml="urn:example:not-saml"');
        refused(await post(b, 'a', good2.replace('</samlp:Response>', `${alien}</samlp:Response>`)));
        assert.equal(await me(b), null);
      });

      test('refused: the signed assertion nested inside a forged one, or kept in the forged one\'s ds:Object', async () => {
        const b = new Browser(app.url);
        for (const place of ['nested', 'object'] as const) {
          const id = await start(b, `ada@${conn.a.domain}`);
          const good = signed('a', { inResponseTo: id });
          const a = ASSERTION.exec(good)![0];
          const assertionId = /ID="([^"]+)"/.exec(a)![1]!;
          const forged = ASSERTION.exec(response('a', { inResponseTo: id, assertionId, nameId: `root@${conn.a.domain}`, attributes: { email: `root@${conn.a.domain}` } }).xml)![0];
          const sig = SIGNATURE.exec(a)![0];
          const inner = place === 'nested' ? a : `${sig.replace('</ds:Signature>', `<ds:Object>${a.replace(sig, '')}</ds:Object></ds:Signature>`)}`;
          // The forged assertion carries the copied signature (or the original) right after its Issuer.
          const wrapper = forged.replace(/(<\/saml:Issuer>)/, `$1${place === 'nested' ? sig : inner}`).replace('</saml:Assertion>', place === 'nested' ? `${inner}</saml:Assertion>` : '</saml:Assertion>');
          refused(await post(b, 'a', good.replace(a, wrapper)));
        }
        assert.equal(await me(b), null);
      });

      test('refused: a forged assertion with two signatures (the IdP\'s, no longer matching, and the attacker\'s)', async () => {
        const b = new Browser(app.url);
        const id = await start(b, `ada@${conn.a.domain}`);
        const good = signed('a', { inResponseTo: id });
        const a = ASSERTION.exec(good)![0];
        const assertionId = /ID="([^"]+)"/.exec(a)![1]!;
        const theirs = sign(response('a', { inResponseTo: id, assertionId, nameId: `root@${conn.a.domain}`, attributes: { email: `root@${conn.a.domain}` } }).xml, evil, 'assertion');
        for (const order of ['idp-first', 'attacker-first'] as const) {
          const id2 = order === 'idp-first' ? id : await start(b, `ada@${conn.a.domain}`);
          const x = theirs.replaceAll(id, id2);
          const evilSig = SIGNATURE.exec(x)![0];
          const both = order === 'idp-first' ? x.replace(evilSig, `${SIGNATURE.exec(a)![0]}${evilSig}`) : x.replace(evilSig, `${evilSig}${SIGNATURE.exec(a)![0]}`);
          refused(await post(b, 'a', both), 'saml_signature_invalid');
        }
        assert.equal(await me(b), null);
      });

      test('a CDATA section in the NameID or the email signs in the whole signed name, never the shorter one; a comment in the email is refused', async () => {
        const victim = await app.createUser({ org: orgA, username: `victim-${dialect}`, email: `victim@${conn.a.domain}` });
        const attacker = `victim@${conn.a.domain}.evil.test`;
        const b = new Browser(app.url);
        const id = await start(b, `ada@${conn.a.domain}`);
        const x = signed('a', { inResponseTo: id, nameId: attacker, attributes: { email: attacker } });
        const cdata = x.replaceAll(`>${attacker}<`, `>victim@${conn.a.domain}<![CDATA[]]>.evil.test<`);
        assert.notEqual(cdata, x);
        const r = await post(b, 'a', cdata);
        if (r.status === 303) assert.notEqual((await me(b))?.username, victim.username, 'not the victim');
        else refused(r);
        const b2 = new Browser(app.url);
        const id2 = await start(b2, `ada@${conn.a.domain}`);
        const y = signed('a', { inResponseTo: id2, nameId: `ada@${conn.a.domain}`, attributes: { email: attacker } });
        refused(await post(b2, 'a', y.replace(`>${attacker}<`, `>victim@${conn.a.domain}<!---->.evil.test<`)), 'saml_comment_in_assertion');
        assert.equal(await me(b2), null);
      });

      test('refused: a DOCTYPE (billion laughs, or a harmless one before a validly signed response), fast and with the app alive', async () => {
        const b = new Browser(app.url);
        const id = await start(b, `ada@${conn.a.domain}`);
        const good = signed('a', { inResponseTo: id });
        const lol = ['<!ENTITY l0 "lollollollollollollollollollol">', ...Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`)].join('');
        const bomb = `<?xml version="1.0"?><!DOCTYPE samlp:Response [${lol}]>${good.replace(`>ada@${conn.a.domain}<`, '>&l9;<')}`;
        const t0 = Date.now();
        refused(await post(b, 'a', bomb));
        assert.ok(Date.now() - t0 < 5000, 'answered at once');
        await alive();
        const id2 = await start(b, `ada@${conn.a.domain}`);
        refused(await post(b, 'a', `<!DOCTYPE samlp:Response>${signed('a', { inResponseTo: id2 })}`), 'saml_doctype');
        assert.equal(await me(b), null);
      });

      test('bad bodies: too large (413), deeply nested, not base64, deflated, not XML, empty, repeated, JSON — each a 4xx page', async () => {
        const b = new Browser(app.url);
        await start(b, `ada@${conn.a.domain}`);
        const big = await postRaw(b, 'a', b64(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">${'<x/>'.repeat(200_000)}</samlp:Response>`));
        assert.equal(big.status, 413, big.text.slice(0, 300));
        refused(await post(b, 'a', `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">${'<a>'.repeat(40_000)}${'</a>'.repeat(40_000)}</samlp:Response>`));
        await alive();
        refused(await postRaw(b, 'a', '%%% not base64 !!!'));
        refused(await postRaw(b, 'a', deflateRawSync(Buffer.from(signed('a', { inResponseTo: await start(b, `ada@${conn.a.domain}`) }))).toString('base64')));
        refused(await post(b, 'a', '<samlp:Response <<'));
        refused(await post(b, 'a', 'plain text'));
        refused(await postRaw(b, 'a', ''));
        refused(await b.request('POST', `/login/saml/${conn.a.id}/acs`));
        const repeated = await fetch(`${app.url}/login/saml/${conn.a.id}/acs`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: `SAMLResponse=${encodeURIComponent(b64('<a/>'))}&SAMLResponse=x`, redirect: 'manual' });
        assert.equal(repeated.status, 400);
        const json = await fetch(`${app.url}/login/saml/${conn.a.id}/acs`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/html' }, body: JSON.stringify({ SAMLResponse: ['x'] }), redirect: 'manual' });
        assert.equal(json.status, 400);
        await alive();
      });
    });

    test('a connection id that is no connection (not a UUID, quotes, an unknown UUID) is a 404 page at the ACS and the SP metadata URL', async () => {
      const b = new Browser(app.url);
      for (const id of ['not-a-uuid', "x' OR '1'='1", '00000000-0000-0000-0000-000000000000', '%00']) {
        const acs = await b.post(`/login/saml/${encodeURIComponent(id)}/acs`, { SAMLResponse: b64('<a/>') });
        assert.ok(acs.status === 404 || acs.status === 400, `${id}: ${acs.status} ${acs.text.slice(0, 300)}`);
        assert.match(acs.headers.get('content-type') ?? '', /text\/html/, id);
        const md = await b.get(`/login/saml/${encodeURIComponent(id)}/metadata`);
        assert.ok(md.status === 404 || md.status === 400, `${id}: ${md.status}`);
      }
      await alive();
    });

    describe('InResponseTo, binding and replay', () => {
      test('refused: an IdP-initiated assertion (signed, answering nothing) wrapped in a response to the attacker\'s own request, where IdP-initiated is off', async () => {
        const b = new Browser(app.url);
        const mine = await start(b, `ada@${conn.a.domain}`);
        // The signed assertion names no request; only the unsigned Response around it says it answers `mine`.
        const unsolicited = signed('a', { inResponseTo: null });
        const wrapped = unsolicited.replace('<samlp:Response ', `<samlp:Response InResponseTo="${mine}" `);
        refused(await post(b, 'a', wrapped), 'saml_in_response_to_mismatch');
        assert.equal(await me(b), null);
      });

      test("refused: a response answering one request whose assertion answers another (the victim's)", async () => {
        const victim = new Browser(app.url);
        const theirs = await start(victim, `ada@${conn.a.domain}`);
        const attacker = new Browser(app.url);
        const mine = await start(attacker, `ada@${conn.a.domain}`);
        const x = signed('a', { inResponseTo: theirs }).replace(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="`, `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" data-x="1" ID="`);
        refused(await post(attacker, 'a', x.replace(/(<samlp:Response[^>]*?) InResponseTo="[^"]+"/, `$1 InResponseTo="${mine}"`)));
        assert.equal(await me(attacker), null);
      });

      test("refused, where IdP-initiated is on: another browser's SP-initiated assertion with the Response's InResponseTo stripped", async () => {
        const victim = new Browser(app.url);
        const theirs = await start(victim, `ada@${conn.init.domain}`);
        const x = signed('init', { inResponseTo: theirs });
        const stripped = x.replace(/(<samlp:Response[^>]*?) InResponseTo="[^"]+"/, '$1');
        assert.notEqual(stripped, x);
        const attacker = new Browser(app.url);
        refused(await post(attacker, 'init', stripped), 'saml_in_response_to_mismatch');
        assert.equal(await me(attacker), null);
      });

      test('an assertion used on one instance is refused on the other, even with a fresh request of the same browser', async () => {
        const b = new Browser(app.url);
        const xml = signed('init', { inResponseTo: null });
        assert.equal((await post(b, 'init', xml)).status, 303);
        refused(await post(new Browser(app2.url), 'init', xml), 'saml_assertion_replayed');
      });
    });

    describe('tenancy', () => {
      test("org A's admin cannot claim org B's domain, and an IdP of A's naming B's entity ID and signing B's people in signs in no one of B", async () => {
        // B's victim signs in once through B's own IdP: their identity is (IDP_B, victim-nameid).
        const vb = new Browser(app.url);
        const vid = await start(vb, `victim@${conn.b.domain}`);
        assert.equal((await post(vb, 'b', signed('b', { inResponseTo: vid, nameId: 'victim-nameid', attributes: { email: `victim@${conn.b.domain}` } }))).status, 303);
        const victim = (await me(vb))!;
        assert.ok(victim);
        const claim = await app.request('POST', `/gateway/v1/orgs/${orgA}/sso`, { key: keyA, body: { kind: 'saml', entity_id: IDP_B, sso_url: 'https://evil.example/sso', certificates: [evil.cert], domains: [conn.b.domain] } });
        assert.equal(claim.status, 422, claim.text);
        assert.ok(claim.body.error.problems.some((p: { code: string }) => p.code === 'domain_unavailable'), claim.text);
        // The same entity ID as B's IdP, the attacker's certificate, a domain of A's: allowed (entity IDs are not secrets), and harmless.
        const twin = await app.request('POST', `/gateway/v1/orgs/${orgA}/sso`, { key: keyA, body: { kind: 'saml', entity_id: IDP_B, sso_url: 'https://evil.example/sso', certificates: [evil.cert], domains: [`twin-${dialect}.test`] } });
        assert.equal(twin.status, 201, twin.text);
        const t: Conn = { id: twin.body.id, acs: twin.body.saml.acs_url, sp: twin.body.saml.sp_entity_id, domain: `twin-${dialect}.test`, issuer: IDP_B, key: evil };
        const b = new Browser(app.url);
        const id = await start(b, `someone@${t.domain}`);
        const forged = (acs: string, audience: string, irt: string | null) =>
          sign(buildResponse({ issuer: IDP_B, acs, audience, inResponseTo: irt, nameId: 'victim-nameid', attributes: { email: `victim@${conn.b.domain}` } }).xml, evil, 'assertion');
        const r = await b.post(`/login/saml/${t.id}/acs`, { SAMLResponse: b64(forged(t.acs, t.sp, id)) });
        if (r.status === 303) assert.notEqual((await me(b))?.username, victim.username, "never B's victim");
        else refused(r);
        // The forged assertion at B's own ACS: not B's IdP's key.
        const b2 = new Browser(app.url);
        const id2 = await start(b2, `victim@${conn.b.domain}`);
        refused(await post(b2, 'b', forged(conn.b.acs, conn.b.sp, id2)), 'saml_signature_invalid');
        assert.equal(await me(b2), null);
      });

      test("an assertion of A's connection posted to another connection's ACS is refused (audience), even from the same IdP key", async () => {
        const b = new Browser(app.url);
        const id = await start(b, `ada@${conn.init.domain}`);
        // init shares A's IdP key: the assertion names a's issuer, audience and ACS.
        refused(await post(b, 'init', signed('a', { inResponseTo: id })));
        refused(await post(b, 'init', sign(response('init', { inResponseTo: null, audience: conn.a.sp }).xml, k1, 'assertion')), 'saml_audience_mismatch');
        assert.equal(await me(b), null);
      });

      test("another org's admin gets 404 on a SAML connection; a member cannot create one", async () => {
        assert.equal((await app.request('GET', `/gateway/v1/orgs/${orgA}/sso/${conn.b.id}`, { key: keyA })).status, 404);
        assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${orgA}/sso/${conn.b.id}`, { key: keyA, body: { allow_idp_initiated: true } })).status, 404);
        assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${orgB}/sso/${conn.b.id}`, { key: keyA, body: { allow_idp_initiated: true } })).status, 404);
        const member = await app.createUser({ org: orgA, username: `member-${dialect}` });
        const r = await app.request('POST', `/gateway/v1/orgs/${orgA}/sso`, { key: member.key, body: { kind: 'saml', entity_id: 'https://m.example', sso_url: 'https://m.example/sso', certificates: [k1.cert] } });
        assert.equal(r.status, 403, r.text);
      });
    });

    describe('hostile settings', () => {
      test('refused: an SSO URL that is not http(s) (javascript:, data:), a certificate that is not one', async () => {
        const bad = async (body: Record<string, unknown>, field: string) => {
          const r = await app.request('POST', `/gateway/v1/orgs/${orgA}/sso`, { key: keyA, body: { kind: 'saml', entity_id: 'https://h.example', sso_url: 'https://h.example/sso', certificates: [k1.cert], ...body } });
          assert.ok(r.status === 400 || r.status === 422, r.text);
          assert.ok(JSON.stringify(r.body.error.problems ?? []).includes(field), r.text);
        };
        await bad({ sso_url: 'javascript:alert(document.domain)' }, 'sso_url');
        await bad({ sso_url: 'data:text/html,<script>alert(1)</script>' }, 'sso_url');
        await bad({ certificates: ['MIIBnotacertificate'] }, 'certificate_invalid');
        await bad({ certificates: ['-----BEGIN CERTIFICATE-----\n<script>\n-----END CERTIFICATE-----'] }, 'certificate_invalid');
        const md = idpMetadata({ entityId: 'https://h.example', ssoUrl: 'https://h.example/sso', keys: [k1] }).replace(k1.certBody, 'AAAA');
        await bad({ entity_id: undefined, sso_url: undefined, certificates: undefined, metadata_xml: md }, 'metadata_certificate_invalid');
        // "|" separates the identity key saml|<entity ID>|<NameID>: entity "…/a|b" with NameID "c" would spell the
        // key of entity "…/a" with NameID "b|c". Entity IDs are URIs, which have no "|", nor spaces.
        await bad({ entity_id: 'https://h.example/a|b' }, 'entity_id_invalid');
        await bad({ entity_id: 'https://h.example/a b' }, 'entity_id_invalid');
        await bad({ entity_id: undefined, sso_url: undefined, certificates: undefined, metadata_xml: idpMetadata({ entityId: 'https://h.example/a|b', ssoUrl: 'https://h.example/sso', keys: [k1] }) }, 'entity_id_invalid');
        const patch = await app.request('PATCH', `/gateway/v1/orgs/${orgA}/sso/${conn.init.id}`, { key: keyA, body: { sso_url: 'javascript:alert(1)' } });
        assert.ok(patch.status === 400 || patch.status === 422, patch.text);
      });

      test('an expired IdP certificate is kept but shown expired; markup in the entity ID is escaped on /admin', async () => {
        const old = makeKey('expired', -2);
        const xss = `https://x.example/"><script>alert(1)</script>`;
        const r = await app.request('POST', `/gateway/v1/orgs/${orgA}/sso`, { key: keyA, body: { kind: 'saml', entity_id: xss, sso_url: 'https://x.example/sso', certificates: [old.cert], domains: [] } });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.body.saml.certificates[0].expired, true);
        const admin = await signIn(app, `admin@${orgA}.example`);
        const page = await admin.get('/admin');
        assert.equal(page.status, 200);
        assert.ok(!page.text.includes('<script>alert(1)</script>'), 'escaped');
        assert.ok(page.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
        assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${orgA}/sso/${r.body.id}`, { key: keyA })).status, 204);
      });

      test('metadata URL: a redirect is not followed; a slow or endless document does not hang the admin', async () => {
        const create = (path: string) => app.request('POST', `/gateway/v1/orgs/${orgA}/sso`, { key: keyA, body: { kind: 'saml', metadata_url: `${serverBase}${path}` } });
        served.set(`/${dialect}/redirect`, { status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' }, body: '' });
        const r = await create(`/${dialect}/redirect`);
        assert.equal(r.status, 400, r.text);
        assert.ok(r.text.includes('metadata_http_status'), r.text);
        served.set(`/${dialect}/notxml`, { headers: { 'content-type': 'application/xml' }, body: '{"issuer":"https://x"}' });
        const n = await create(`/${dialect}/notxml`);
        assert.equal(n.status, 400, n.text);
        assert.ok(n.text.includes('metadata_malformed'), n.text);
      });
    });

    describe('sessions and accounts', () => {
      test('no fixation through the ACS: a planted session id (made up, or the attacker\'s own) is replaced, and the attacker\'s stays theirs', async () => {
        const att = new Browser(app.url);
        assert.equal((await post(att, 'a', signed('a', { inResponseTo: await start(att, `mallory@${conn.a.domain}`), nameId: `mallory@${conn.a.domain}`, attributes: { email: `mallory@${conn.a.domain}` } }))).status, 303);
        const mallory = (await me(att))!;
        const planted = att.jar.get('trackgate.sid')!;
        for (const sid of [planted, 'made-up-session-id']) {
          const v = new Browser(app.url);
          const email = `fix-${sid.length}@${conn.a.domain}`;
          const id = await start(v, email);
          // Planted while the victim is away at the IdP.
          v.jar.set('trackgate.sid', sid);
          assert.equal((await post(v, 'a', signed('a', { inResponseTo: id, nameId: email, attributes: { email } }))).status, 303);
          assert.notEqual(v.jar.get('trackgate.sid'), sid, 'a new session id');
          assert.equal((await me(v))?.email, email);
        }
        // The planted session was ended by the sign-in (regenerated): it names nobody now, and never the victim.
        assert.equal(await me(att), null, "the attacker's planted session is gone");
        assert.ok(mallory.username);
      });

      test('logout on one instance ends the SAML session on the other; a deactivated account cannot sign in by SAML', async () => {
        const b = new Browser(app.url);
        const email = `leaver@${conn.a.domain}`;
        const nameId = `leaver-${dialect}`;
        const login = async (browser: Browser) => post(browser, 'a', signed('a', { inResponseTo: await start(browser, email), nameId, attributes: { email } }));
        assert.equal((await login(b)).status, 303);
        const user = (await me(b))!;
        const sid = b.jar.get('trackgate.sid')!;
        const other = new Browser(app2.url);
        other.jar.set('trackgate.sid', sid);
        assert.ok(await me(other));
        const { csrf_token } = JSON.parse((await b.request('GET', '/gateway/v1/session', { headers: { accept: 'application/json' } })).text) as { csrf_token: string };
        assert.equal((await b.post('/logout', { csrf_token })).status, 303);
        assert.equal(await me(other), null, 'the old cookie is dead on the other instance');
        const d = await app.request('PATCH', `/gateway/v1/orgs/${orgA}/users/${user.username}`, { key: keyA, body: { status: 'deactivated' } });
        assert.equal(d.status, 200, d.text);
        const again = new Browser(app2.url);
        refused(await login(again), 'user_deactivated');
        assert.equal(await me(again), null);
      });
    });

    test.todo("a SAMLResponse over the ACS's 512 KB limit is answered 413 as JSON, not the sign-in error page: the body parser runs before the route's errorPages marks it a page (src/http/express-app.ts bodyLimits); harmless, but the person sees raw JSON");

    test('the Test login page links to the IdP by an http(s) URL only', async () => {
      const admin = await signIn(app, `admin@${orgA}.example`);
      const csrf = WebBrowser.csrf((await admin.get('/admin')).text);
      const started = await admin.post(`/admin/sso/${conn.a.id}/test-login`, { csrf_token: csrf });
      assert.equal(started.status, 200);
      const url = decodeHtml(/<a class="button" href="([^"]+)">Continue to the identity provider/.exec(started.text)?.[1] ?? '');
      assert.match(url, /^https:\/\//);
    });
  });
}

describe('SAML metadata URL outside development mode (SSRF)', () => {
  let app: TestApp;
  let key: string;
  let org: string;
  before(async () => {
    app = await startApp('sqlite', {});
    ({ adminKey: key, org } = await app.bootstrap({ org: 'atk-ssrf' }));
  });
  after(() => app.close());

  test('refused: loopback, link-local (cloud metadata), private, plain http; nothing is fetched', async () => {
    let hits = 0;
    served.set('/ssrf.xml', { body: idpMetadata({ entityId: 'https://s.example', ssoUrl: 'https://s.example/sso', keys: [k1] }) });
    const counting = server.listeners('request')[0] as (...a: unknown[]) => void;
    const count = (...a: unknown[]) => {
      hits++;
      counting(...a);
    };
    server.removeAllListeners('request');
    server.on('request', count);
    try {
      for (const url of [`${serverBase}/ssrf.xml`, `https://127.0.0.1:${new URL(serverBase).port}/ssrf.xml`, 'https://169.254.169.254/latest/meta-data/', 'https://10.0.0.1/md.xml', 'https://[::1]/md.xml', 'https://localhost/md.xml']) {
        const r = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key, body: { kind: 'saml', metadata_url: url } });
        assert.equal(r.status, 400, `${url}: ${r.text}`);
        assert.ok(r.body.error.problems.some((p: { field: string }) => p.field === 'metadata_url'), r.text);
      }
    } finally {
      server.removeAllListeners('request');
      server.on('request', counting);
    }
    assert.equal(hits, 0, 'nothing was fetched');
  });
});
