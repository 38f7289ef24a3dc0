/**
 * Leaked keys revoke themselves (issue 17): GitHub's secret scanning partner program, played by the test.
 * The test makes an ECDSA P-256 key pair, publishes its public key on loopback in GitHub's format, and
 * signs reports with it; a report signed otherwise must revoke nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { generateSecretToken } from '../src/keys/key-format.ts';
import { dialects, startApp } from './support/app.ts';
import type { TestApp, TestResponse } from './support/app.ts';
import { freePort } from './support/net.ts';
import { signIn, textOf } from './support/web.ts';

const REPORTS = '/gateway/v1/secret-scanning/reports';
const KEY_ID = 'test-scanner-key-1';

interface Scanner {
  url: string;
  privateKey: KeyObject;
  fetches: number;
  close(): Promise<void>;
}

/** A secret scanner's key endpoint on loopback: `{"public_keys":[…]}` as GitHub publishes it. */
async function startScanner(): Promise<Scanner> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const scanner: Scanner = { url: '', privateKey, fetches: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    scanner.fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ public_keys: [{ key_identifier: KEY_ID, key: pem, is_current: true }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  scanner.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/meta/public_keys/secret_scanning`;
  scanner.close = () => new Promise<void>((r) => server.close(() => r()));
  return scanner;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Posts `body` as a report with the given signature headers (none when `headers` is null). */
function post(app: TestApp, body: string, headers: Record<string, string> | null): Promise<TestResponse> {
  return app.request('POST', REPORTS, { rawBody: body, headers: { 'content-type': 'application/json', ...(headers ?? {}) } });
}

/** Signs `body` with `key` as GitHub does: ECDSA over SHA-256 of the raw bytes, base64 DER. */
function signed(body: string, key: KeyObject, keyId = KEY_ID): Record<string, string> {
  return { 'github-public-key-identifier': keyId, 'github-public-key-signature': sign('sha256', Buffer.from(body), key).toString('base64') };
}

function report(items: Array<{ token: string; type?: string; url?: string; source?: string }>): string {
  return JSON.stringify(items.map((i) => ({ type: 'trackgate_api_key', url: 'https://github.com/acme/train/blob/abc/config.py', source: 'content', ...i })));
}

async function verify(app: TestApp, key: string): Promise<{ status: number; code: string | undefined }> {
  const r = await app.request('GET', '/auth/verify', { key });
  return { status: r.status, code: (r.body as { error?: { code?: string } } | null)?.error?.code };
}

for (const dialect of dialects()) {
  describe(`secret scanning (${dialect})`, () => {
    let scanner: Scanner;
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let team: string;
    let member: { key: string; username: string };
    let spareKey: string;
    let teamAdmin: { key: string; username: string };
    let plainMember: { key: string; username: string };
    let sa: { id: string; username: string; key: string; keyId: string };
    let scimToken: string;
    let accessToken: { token: string; id: string };

    before(async () => {
      scanner = await startScanner();
      app = await startApp(dialect, { secretScanningKeysUrl: scanner.url, allowHttpIssuers: true });
      ({ org, adminKey } = await app.bootstrap());
      team = `ml-${org}`;
      member = await app.createUser({ org, username: `member-${org}` });
      teamAdmin = await app.createUser({ org, username: `tadmin-${org}` });
      plainMember = await app.createUser({ org, username: `plain-${org}` });
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
      for (const [u, role] of [[teamAdmin.username, 'admin'], [plainMember.username, 'member']] as const) {
        const r = await app.request('PUT', `/gateway/v1/teams/${team}/members/${u}`, { key: adminKey, body: { role } });
        assert.ok(r.status === 201 || r.status === 200, r.text);
      }
      const spare = await app.request('POST', '/gateway/v1/me/keys', { key: member.key, body: { name: 'spare' } });
      assert.equal(spare.status, 201, spare.text);
      spareKey = spare.body.key;
      const s = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: teamAdmin.key, body: { name: 'nightly' } });
      assert.equal(s.status, 201, s.text);
      sa = { id: s.body.id, username: s.body.username, key: s.body.key.key, keyId: s.body.key.key_id };
      const t = await app.request('POST', `/gateway/v1/orgs/${org}/scim/tokens`, { key: adminKey, body: { name: 'okta' } });
      assert.equal(t.status, 201, t.text);
      scimToken = t.body.token;
      app.keys.add(scimToken);
      // An access token of the service account, as an exchange (/oidc/token) would have issued it.
      const saRow = await app.gw.core.store.repos.keys.findByHash(sha256(sa.key));
      assert.ok(saRow);
      const g = generateSecretToken('tga');
      accessToken = { token: g.key, id: randomUUID() };
      app.keys.add(g.key);
      const now = Date.now();
      await app.gw.core.store.repos.accessTokens.insert({
        id: accessToken.id,
        org_id: saRow.org_id,
        service_account_id: sa.id,
        credential_id: randomUUID(),
        token_id: g.keyId,
        token_hash: g.hash,
        issuer: 'https://token.actions.githubusercontent.com',
        subject: 'repo:acme/train:ref:refs/heads/main',
        jti: null,
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + 3600_000).toISOString(),
        revoked_at: null,
      });
    });
    after(async () => {
      await app.close();
      await scanner.close();
    });

    const scimStatus = async (token: string) => (await fetch(`${app.url}/scim/v2/Users`, { headers: { authorization: `Bearer ${token}` } })).status;
    const leakedEvents = async () => {
      const events: Array<{ action: string; actor: { type: string }; target: { type: string; id: string; name: string }; details: Record<string, unknown> }> = [];
      for (const action of ['key.leaked', 'access_token.leaked', 'scim.token.leaked']) {
        const r = await app.request('GET', `/gateway/v1/orgs/${org}/audit?action=${action}`, { key: adminKey });
        assert.equal(r.status, 200, r.text);
        events.push(...r.body.events);
      }
      return events;
    };

    test('refused reports revoke nothing: unsigned, forged, signature of another body, unknown key id, malformed signature', async () => {
      const body = report([{ token: member.key }]);
      const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const cases: Array<[string, Record<string, string> | null]> = [
        ['no signature headers', null],
        ['only the key id', { 'github-public-key-identifier': KEY_ID }],
        ['signed by another key pair', signed(body, other)],
        ['the signature of another body', signed(report([{ token: spareKey }]), scanner.privateKey)],
        ['an unknown key id', signed(body, scanner.privateKey, 'not-a-published-key')],
        ['a signature that is not DER', { 'github-public-key-identifier': KEY_ID, 'github-public-key-signature': Buffer.from('not a signature').toString('base64') }],
      ];
      for (const [what, headers] of cases) {
        const r = await post(app, body, headers);
        assert.equal(r.status, 401, `${what}: ${r.text}`);
        assert.equal(r.body.error.code, 'invalid_signature', what);
        assert.equal((await verify(app, member.key)).status, 200, `${what}: the key still works`);
      }
      assert.deepEqual(await leakedEvents(), [], 'nothing audited');
      // A body altered after signing (one byte) is refused too: the signature covers the raw bytes, not what they parse to.
      const unknown = generateSecretToken('tgp').key;
      app.keys.add(unknown);
      const control = report([{ token: unknown }]);
      const h = signed(control, scanner.privateKey);
      assert.equal((await post(app, control.replace('content', 'Content'), h)).status, 401);
      assert.equal((await post(app, control.replace('[{', '[ {'), h)).status, 401, 'the same JSON, other bytes');
      const ok = await post(app, control, h);
      assert.equal(ok.status, 200, 'the same signature over its own body holds (a control)');
      assert.deepEqual(ok.body, [{ token_hash: sha256(unknown), token_type: 'trackgate_api_key', label: 'false_positive' }]);
      assert.equal((await verify(app, member.key)).status, 200);
    });

    test('malformed reports: 400, nothing revoked', async () => {
      const tooMany = JSON.stringify(Array.from({ length: 1001 }, () => ({ token: 'x', type: 't', url: 'u', source: 's' })));
      for (const body of ['not json', '{}', '{"token": "x"}', '[{"type": "x"}]', '[{"token": 5}]', '[{"token": "x", "url": "a\\u0000b"}]', '', tooMany]) {
        const r = await post(app, body, signed(body, scanner.privateKey));
        assert.equal(r.status, 400, `${body.slice(0, 40)}: ${r.status} ${r.text}`);
        assert.equal(r.body.error.code, 'bad_request');
      }
      assert.equal((await verify(app, member.key)).status, 200);
    });

    test('a signed report revokes every live credential in it at once, answers each token in order, audits where it leaked', async () => {
      const unknown = generateSecretToken('tgp').key;
      app.keys.add(unknown);
      const items = [
        { token: member.key, type: 'trackgate_api_key' },
        { token: sa.key, type: 'trackgate_api_key', url: 'https://github.com/acme/ci/blob/main/.env', source: 'commit' },
        { token: 'tgp-' + 'a'.repeat(40), type: 'trackgate_api_key' },
        { token: scimToken, type: 'trackgate_scim_token' },
        { token: unknown, type: 'trackgate_api_key' },
        { token: accessToken.token, type: 'trackgate_access_token' },
        { token: member.key, type: 'trackgate_api_key' },
      ];
      const body = report(items);
      assert.equal((await verify(app, member.key)).status, 200);
      assert.equal((await verify(app, sa.key)).status, 200);
      assert.equal(await scimStatus(scimToken), 200);

      const r = await post(app, body, signed(body, scanner.privateKey));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(
        r.body,
        items.map((i) => ({ token_hash: sha256(i.token), token_type: i.type, label: [member.key, sa.key, scimToken, accessToken.token].includes(i.token) ? 'true_positive' : 'false_positive' })),
      );
      assert.ok(!r.text.includes(member.key), 'the answer names tokens by their hash only');

      // Revoked at once: the very next request fails.
      assert.deepEqual(await verify(app, member.key), { status: 401, code: 'key_revoked' });
      assert.deepEqual(await verify(app, sa.key), { status: 401, code: 'key_revoked' });
      assert.equal(await scimStatus(scimToken), 401);
      const at = await app.gw.core.store.repos.accessTokens.findByHash(sha256(accessToken.token));
      assert.ok(at?.revoked_at, 'the access token is revoked');
      assert.equal((await verify(app, spareKey)).status, 200, 'a key not in the report still works');

      const events = await leakedEvents();
      const byTarget = new Map(events.map((e) => [e.target.name, e]));
      assert.equal(events.length, 4, JSON.stringify(events));
      const personal = byTarget.get(member.key.slice(0, 10));
      assert.ok(personal);
      assert.equal(personal.action, 'key.leaked');
      assert.equal(personal.actor.type, 'secret_scanner');
      assert.deepEqual(
        { url: personal.details.url, source: personal.details.source, type: personal.details.type, owner: personal.details.owner },
        { url: 'https://github.com/acme/train/blob/abc/config.py', source: 'content', type: 'trackgate_api_key', owner: member.username },
      );
      const saEvent = byTarget.get(sa.keyId);
      assert.equal(saEvent?.details.url, 'https://github.com/acme/ci/blob/main/.env');
      assert.equal(saEvent.details.owner, sa.username);
      assert.equal(byTarget.get(scimToken.slice(0, 13))?.action, 'scim.token.leaked');
      assert.equal(byTarget.get(accessToken.token.slice(0, 10))?.action, 'access_token.leaked');

      // The same report again: still true positives, nothing new recorded.
      const second = await post(app, body, signed(body, scanner.privateKey));
      assert.equal(second.status, 200, second.text);
      assert.deepEqual(second.body, r.body);
      assert.equal((await leakedEvents()).length, 4, 'no second audit event');
      const mine = await app.request('GET', '/gateway/v1/me/leaked-credentials', { key: spareKey });
      assert.equal(mine.status, 200, mine.text);
      assert.equal(mine.body.leaked_credentials.filter((n: { label: string }) => n.label === member.key.slice(0, 10)).length, 1, 'one notice');
    });

    test('notices: the owner on /settings, the team admins on the team page; dismissable', async () => {
      const keyId = member.key.slice(0, 10);
      const b = await signIn(app, `${member.username}@${org}.example`);
      const settings = await b.get('/settings');
      assert.equal(settings.status, 200);
      const text = textOf(settings.text);
      assert.match(text, new RegExp(`Your key ${keyId} was found public at https://github.com/acme/train/blob/abc/config.py \\(content\\) on \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC and was revoked — create a new one`));
      const id = new RegExp(`action="/settings/leaked-credentials/([^/"]+)/dismiss"`).exec(settings.text)?.[1];
      assert.ok(id, 'a Dismiss button');
      // Without the page's CSRF token: refused, the notice stays.
      assert.equal((await b.post(`/settings/leaked-credentials/${id}/dismiss`, {})).status, 403);
      // Another person's notice is not theirs to dismiss.
      const admin = await signIn(app, `admin@${org}.example`);
      const adminSettings = await admin.get('/settings');
      assert.match(textOf(adminSettings.text), /Your SCIM token tgscim-\w{6} was found public/, 'the admin who made the SCIM token sees its notice');
      assert.equal((await admin.submit('/settings', `/settings/leaked-credentials/${id}/dismiss`, {})).status, 404);
      const dismissed = await b.submit('/settings', `/settings/leaked-credentials/${id}/dismiss`, {});
      assert.equal(dismissed.status, 303);
      assert.equal(dismissed.location, '/settings');
      assert.doesNotMatch(textOf((await b.get('/settings')).text), /was found public/);

      const teamUrl = `/teams/${team}`;
      const ta = await signIn(app, `${teamAdmin.username}@${org}.example`);
      const teamPage = textOf((await ta.get(teamUrl)).text);
      assert.match(teamPage, new RegExp(`The key ${sa.keyId} of service account ${sa.username} was found public at https://github.com/acme/ci/blob/main/.env \\(commit\\) on .+ and was revoked — create a new one`));
      assert.match(teamPage, new RegExp(`The access token ${accessToken.token.slice(0, 10)} of service account ${sa.username} was found public`));
      assert.match(textOf((await admin.get(teamUrl)).text), /was found public/, 'org admins see them too');
      const pm = await signIn(app, `${plainMember.username}@${org}.example`);
      const plainPage = await pm.get(teamUrl);
      assert.equal(plainPage.status, 200);
      assert.doesNotMatch(textOf(plainPage.text), /was found public/, 'a member who does not manage the team sees none');
      const teamIds = [...(await ta.get(teamUrl)).text.matchAll(/action="\/teams\/[^/]+\/leaked-credentials\/([^/"]+)\/dismiss"/g)].map((m) => m[1]!);
      assert.equal(teamIds.length, 2);
      assert.equal((await pm.submit(teamUrl, `${teamUrl}/leaked-credentials/${teamIds[0]}/dismiss`, {})).status, 403, 'a plain member may not dismiss them');
      for (const tid of teamIds) assert.equal((await ta.submit(teamUrl, `${teamUrl}/leaked-credentials/${tid}/dismiss`, {})).status, 303);
      assert.doesNotMatch(textOf((await ta.get(teamUrl)).text), /was found public/);
    });
  });

  describe(`secret scanning when the scanner's keys cannot be had (${dialect})`, () => {
    let app: TestApp;
    let off: TestApp;
    before(async () => {
      // Nothing listens there: the keys URL is down.
      app = await startApp(dialect, { secretScanningKeysUrl: `http://127.0.0.1:${await freePort()}/keys`, allowHttpIssuers: true });
      off = await startApp(dialect, { secretScanningKeysUrl: 'off' });
    });
    after(async () => {
      await app.close();
      await off.close();
    });

    test('keys URL down: 503, nothing revoked; secret scanning off: 404', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const { adminKey } = await app.bootstrap();
      const body = report([{ token: adminKey }]);
      const r = await post(app, body, signed(body, privateKey));
      assert.equal(r.status, 503, r.text);
      assert.equal(r.body.error.code, 'unavailable');
      assert.equal((await verify(app, adminKey)).status, 200, 'the key still works');
      const o = await post(off, body, signed(body, privateKey));
      assert.equal(o.status, 404, o.text);
    });
  });
}

describe('the README one-line checker of a credential', () => {
  const line = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('printf %s "$WANDB_API_KEY" | node -e \''));
  assert.ok(line, 'the README has the checker');
  const code = line.slice(line.indexOf("node -e '") + "node -e '".length, -1);
  const check = (input: string) =>
    new Promise<number>((resolve) => {
      const child = execFile(process.execPath, ['-e', code], (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0));
      child.stdin?.end(input);
    });

  test('accepts every kind of generated credential and refuses a mutated one', async () => {
    for (const prefix of ['tgp', 'tgs', 'tga', 'tgscim']) {
      const k = generateSecretToken(prefix).key;
      assert.equal(await check(k), 0, `${prefix}: accepted`);
      assert.equal(await check(`${k}\n`), 0, `${prefix}: with a newline`);
      // One character changed (to another), anywhere: the checksum no longer holds.
      for (const at of [prefix.length + 1, prefix.length + 20, k.length - 1]) {
        const c = k.charAt(at);
        const mutated = k.slice(0, at) + (c === 'A' ? 'B' : 'A') + k.slice(at + 1);
        assert.equal(await check(mutated), 1, `${prefix}: mutated at ${at} refused`);
      }
    }
    assert.equal(await check('tgp-short'), 1);
    assert.equal(await check(''), 1);
  });

  test('the regular expressions in the README match the credentials they name', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const [prefix, re] of [
      ['tgp', String.raw`\btg[ps]-[0-9A-Za-z]{40}\b`],
      ['tgs', String.raw`\btg[ps]-[0-9A-Za-z]{40}\b`],
      ['tga', String.raw`\btga-[0-9A-Za-z]{40}\b`],
      ['tgscim', String.raw`\btgscim-[0-9A-Za-z]{40}\b`],
    ] as const) {
      assert.ok(readme.includes(`\`${re}\``), `README lists ${re}`);
      const k = generateSecretToken(prefix).key;
      assert.deepEqual(`token = "${k}"`.match(new RegExp(re, 'g')), [k]);
    }
  });
});
