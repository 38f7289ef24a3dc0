/**
 * The web pages over real HTTP, as a browser uses them: sign-in through a
 * one-time login link, forms posted with the session's CSRF token,
 * post/redirect/get, a new key shown exactly once, theme, team and admin
 * pages, tenant isolation and roles as error pages, an SSO connection made
 * from the admin form against a real IdP and then used to sign in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { driveIdpLogin } from './support/idp/drive.ts';
import { startOktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import type { OktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import { signIn, textOf, WebBrowser } from './support/web.ts';
import type { Page } from './support/web.ts';
import { parseGroupRules } from '../src/web/form.ts';
import { errorPage } from '../src/web/views/common.ts';
import { html, raw } from '../src/html/html.ts';
import { freePort } from './support/net.ts';

const KEY = /tg[ps]-[A-Za-z0-9]{40}/g;


function htmlClass(page: Page): string {
  return /<html lang="en" class="([^"]*)">/.exec(page.text)?.[1] ?? '';
}

function assertErrorPage(page: Page, status: number, code: string) {
  assert.equal(page.status, status, page.text.slice(0, 800));
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.text, new RegExp(`<code>${code}</code>`));
}

async function me(app: TestApp, key: string) {
  return app.request('GET', '/gateway/v1/me', { key });
}

test('HTML output is escaped, and group rules parse one per line', () => {
  assert.equal(html`<p title="${'"x"'}">${'<script>&'}</p>`.value, '<p title="&quot;x&quot;">&lt;script&gt;&amp;</p>');
  assert.equal(html`${[raw('<b>'), '<i>']}`.value, '<b>&lt;i&gt;');
  // Only lines and fields: the last two are team and role, whatever they say (the API's schema judges them).
  assert.deepEqual(parseGroupRules('ML, Engineers,ml,admin\n\n  research , res ,viewer\neng,ml,admn\nops,ops'), [
    { group: 'ML, Engineers', team: 'ml', role: 'admin' },
    { group: 'research', team: 'res', role: 'viewer' },
    { group: 'eng', team: 'ml', role: 'admn' },
    { group: 'ops', team: 'ops' },
  ]);
  assert.throws(() => parseGroupRules('lonely'), /line 1/);
  // 5xx pages say nothing about the cause.
  const page = errorPage({ status: 500, code: 'internal_error', message: 'SQLITE_BUSY at /srv/x.ts:12', requestId: 'r1' });
  assert.doesNotMatch(page, /SQLITE_BUSY/);
  assert.match(page, /Something went wrong on our side/);
});

let okta: OktaLikeIdp;
before(async () => {
  okta = await startOktaLikeIdp();
});
after(() => okta.close());

for (const dialect of dialects()) {
  describe(`web pages (${dialect})`, () => {
    let app: TestApp;
    let org = '';
    let adminKey = '';
    let adminEmail = '';
    let callback = '';
    const team = `ml-${dialect}`;
    const member = { username: `mia-${dialect}`, email: '', key: '' };

    before(async () => {
      const port = await freePort();
      app = await startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true });
      callback = `http://127.0.0.1:${port}/login/callback`;
      const b = await app.bootstrap({ org: `web-${dialect}`, plan: 'enterprise' });
      org = b.org;
      adminKey = b.adminKey;
      adminEmail = `admin@${org}.example`;
      const m = await app.createUser({ org, username: member.username });
      member.email = `${member.username}@${org}.example`;
      member.key = m.key;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${team}/members/${member.username}`, { key: adminKey, body: { role: 'member' } })).status, 201);
    });
    after(() => app.close());

    test('without a session the pages send the browser to the login page', async () => {
      const b = new WebBrowser(app);
      for (const path of ['/settings', `/teams/${team}`, '/admin?before=3']) {
        const r = await b.get(path);
        assert.equal(r.status, 302, path);
        assert.equal(r.location, `/login?return_to=${encodeURIComponent(path)}`);
      }
      const post = await b.post('/settings/keys', { name: 'x' });
      assert.equal(post.status, 303);
      assert.equal(post.location, '/login?return_to=%2Fsettings');
      // The stylesheet and script are static files (the CSP allows nothing inline).
      const css = await b.get('/static/web/web.css');
      assert.equal(css.status, 200);
      assert.match(css.text, /prefers-color-scheme: dark/);
      assert.equal((await b.get('/static/web/web.js')).status, 200);
    });

    test('settings: who I am, my keys; a new key is shown once and works; the list never shows a secret', async () => {
      const b = await signIn(app, member.email);
      const page = await b.get('/settings');
      assert.equal(page.status, 200);
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /style-src 'self'/);
      assert.doesNotMatch(page.text, /<script>|<style|style="/, 'no inline script or style');
      const text = textOf(page.text);
      for (const s of [member.username, member.email, org, 'member', team, 'provisioned']) assert.ok(text.includes(s), `settings shows ${s}`);
      assert.equal(page.text.match(KEY), null, 'no secret on the settings page');
      const keyId = /<code>(tgp-[A-Za-z0-9]{6})<\/code>/.exec(page.text)?.[1];
      assert.ok(keyId && member.key.startsWith(keyId), 'the existing key is listed by its key ID');

      const created = await b.post('/settings/keys', { csrf_token: WebBrowser.csrf(page.text), name: 'laptop', expires_in_days: '30' });
      assert.equal(created.status, 303);
      assert.equal(created.location, '/settings');
      assert.equal(created.text.match(KEY), null, 'the redirect carries no secret');
      const shown = await b.get('/settings');
      const secrets = [...new Set(shown.text.match(KEY) ?? [])];
      assert.equal(secrets.length, 1, 'the new key, once');
      const secret = secrets[0]!;
      assert.match(textOf(shown.text), /it will not be shown again/);
      assert.match(shown.text, new RegExp(`WANDB_API_KEY=${secret}`));
      assert.equal((await me(app, secret)).status, 200, 'the new key works');
      // The session store never held it readable.
      const rows = await sql<{ data: string }>`select data from sessions`.execute(app.gw.core.database.db);
      assert.ok(rows.rows.length > 0);
      for (const r of rows.rows) assert.ok(!r.data.includes(secret), 'no plaintext key in the session store');
      // Shown once: the next view lists it by key ID only.
      const again = await b.get('/settings');
      assert.equal(again.text.match(KEY), null);
      assert.ok(again.text.includes(`<code>${secret.slice(0, 10)}</code>`), 'listed by key ID');
      assert.match(textOf(again.text), /laptop/);
    });

    test('rotate and revoke: the old key stops, the new one is shown once; a revoked key gets 401', async () => {
      const b = await signIn(app, member.email);
      const page = await b.get('/settings');
      const csrf = WebBrowser.csrf(page.text);
      const created = await b.post('/settings/keys', { csrf_token: csrf, name: 'to-rotate' });
      assert.equal(created.status, 303);
      const old = (await b.get('/settings')).text.match(KEY)![0];
      const list = await app.request('GET', '/gateway/v1/me/keys', { key: old });
      const oldId = list.body.keys.find((k: any) => k.name === 'to-rotate').id;
      const rotated = await b.post(`/settings/keys/${oldId}/rotate`, { csrf_token: csrf, grace_seconds: '0' });
      assert.equal(rotated.status, 303);
      const after = await b.get('/settings');
      const fresh = after.text.match(KEY)![0];
      assert.notEqual(fresh, old);
      assert.match(textOf(after.text), /rotated and revoked/);
      assert.equal((await me(app, old)).status, 401, 'rotation with no grace ends the old key');
      assert.equal((await me(app, fresh)).status, 200);
      const freshId = (await app.request('GET', '/gateway/v1/me/keys', { key: fresh })).body.keys.find((k: any) => k.key_id === fresh.slice(0, 10)).id;
      const revoked = await b.post(`/settings/keys/${freshId}/revoke`, { csrf_token: csrf });
      assert.equal(revoked.status, 303);
      assert.match(textOf((await b.get('/settings')).text), /was revoked/);
      assert.equal((await me(app, fresh)).status, 401, 'a revoked key gets 401');
      // Someone else's key is not found from my settings.
      const adminKeys = await app.request('GET', '/gateway/v1/me/keys', { key: adminKey });
      const r = await b.post(`/settings/keys/${adminKeys.body.keys[0].id}/revoke`, { csrf_token: csrf });
      assertErrorPage(r, 404, 'not_found');
      assert.equal((await me(app, adminKey)).status, 200);
    });

    test('pages and API agree: OPTIONS is safe with the session cookie (no CSRF token), a bad form value gets the API\'s message', async () => {
      const b = await signIn(app, member.email);
      // RFC 9110: OPTIONS changes nothing, so the pages do not ask for the CSRF token (as the API and the gateway do not).
      const opts = await b.request('OPTIONS', '/settings');
      assert.notEqual(opts.status, 403, opts.text.slice(0, 300));
      assert.doesNotMatch(opts.text, /csrf_failed/);
      assert.ok(opts.status < 400, `OPTIONS /settings: ${opts.status}`);
      // A POST without the token still is refused.
      const forged = await b.post('/settings/theme', { theme: 'dark' });
      assertErrorPage(forged, 403, 'csrf_failed');
      // The same bad value, through the API and through the form: the same words.
      const api = await app.request('POST', '/gateway/v1/me/keys', { key: member.key, body: { name: 'x', expires_in_days: 0 } });
      assert.equal(api.status, 400);
      const apiMessage = /expires_in_days: ([^;]+)/.exec(api.body.error.message as string)?.[1];
      assert.ok(apiMessage, api.body.error.message as string);
      const form = await b.submit('/settings', '/settings/keys', { name: 'x', expires_in_days: '0' });
      assert.equal(form.status, 400);
      assert.ok(textOf(form.text).includes(`expires_in_days: ${apiMessage}`), textOf(form.text).slice(0, 1500));
    });

    test('theme: saved, on <html> of every page, kept for the next sign-in', async () => {
      const b = await signIn(app, member.email);
      const page = await b.get('/settings');
      assert.equal(htmlClass(page), 'theme-system');
      const r = await b.post('/settings/theme', { csrf_token: WebBrowser.csrf(page.text), theme: 'dark' });
      assert.equal(r.status, 303);
      assert.equal(htmlClass(await b.get('/settings')), 'theme-dark');
      assert.equal(htmlClass(await b.get(`/teams/${team}`)), 'theme-dark');
      assert.equal(htmlClass(await b.get('/teams/no-such-team')), 'theme-dark', 'error pages too');
      const b2 = await signIn(app, member.email);
      assert.equal(htmlClass(await b2.get('/settings')), 'theme-dark');
      assert.equal((await me(app, member.key)).body.theme, 'dark');
      const bad = await b.post('/settings/theme', { csrf_token: WebBrowser.csrf(page.text), theme: 'neon' });
      assert.equal(bad.status, 400);
      assert.match(textOf(bad.text), /theme: must be light, dark or system/, 'the API\'s message for the same bad value');
      // The page's script: the choice posted at once, asking for no page back (204, no notice left for the next page).
      assert.match(page.text, /<form method="post" action="\/settings\/theme" class="row" data-theme-form>/);
      assert.match(page.text, /<button type="submit" data-without-script>Save<\/button>/, 'the Save button stays for pages without the script');
      const script = await b.post('/settings/theme', { csrf_token: WebBrowser.csrf(page.text), theme: 'light' }, { accept: 'application/json' });
      assert.equal(script.status, 204, script.text.slice(0, 300));
      assert.equal((await me(app, member.key)).body.theme, 'light');
      const light = await b.get('/settings');
      assert.equal(htmlClass(light), 'theme-light');
      assert.doesNotMatch(textOf(light.text), /Theme set to/, 'no notice waiting from the script\'s request');
      // Without the CSRF token the script's request is refused like the form's.
      assert.equal((await b.post('/settings/theme', { theme: 'dark' }, { accept: 'application/json' })).status, 403);
      assert.equal((await me(app, member.key)).body.theme, 'light');
      // A preference, not an audit event: neither the form's change nor the script's, nor the API's, is recorded.
      assert.equal((await app.request('PATCH', '/gateway/v1/me', { key: member.key, body: { theme: 'light' } })).status, 200);
      const audit = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=200`, { key: adminKey });
      assert.equal(audit.status, 200, audit.text);
      assert.ok(!audit.body.events.some((e: any) => e.action === 'user.preferences' || JSON.stringify(e.details ?? {}).includes('"theme"')), 'no audit event for a theme');
      // Sign out (the header's form): the session ends.
      const out = await b.post('/logout', { csrf_token: WebBrowser.csrf(light.text) });
      assert.equal(out.status, 303);
      assert.equal(out.location, '/login?logged_out=1');
      assert.equal((await b.get('/settings')).status, 302);
    });

    test('CSRF: a form without the session token, or with a wrong one, is refused and changes nothing', async () => {
      const b = await signIn(app, member.email);
      const other = await signIn(app, adminEmail);
      const otherToken = WebBrowser.csrf((await other.get('/settings')).text);
      const keysBefore = (await app.request('GET', '/gateway/v1/me/keys', { key: member.key })).body.keys.length;
      const themeBefore = (await me(app, member.key)).body.theme;
      for (const token of [undefined, '', 'wrong-token', otherToken]) {
        const form: Record<string, string> = { name: 'csrf-victim' };
        if (token !== undefined) form.csrf_token = token;
        assertErrorPage(await b.post('/settings/keys', form), 403, 'csrf_failed');
        assertErrorPage(await b.post('/settings/theme', { ...(token !== undefined ? { csrf_token: token } : {}), theme: themeBefore === 'dark' ? 'light' : 'dark' }), 403, 'csrf_failed');
        assertErrorPage(await other.post('/admin/policies', { ...(token !== undefined && token !== otherToken ? { csrf_token: token } : {}), disable_personal_keys: 'on' }), 403, 'csrf_failed');
      }
      assert.equal((await app.request('GET', '/gateway/v1/me/keys', { key: member.key })).body.keys.length, keysBefore);
      assert.equal((await me(app, member.key)).body.theme, themeBefore);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}`, { key: adminKey })).body.policies.disable_personal_keys, false);
    });

    test('team page: members and roles managed by admins; service accounts (enterprise) with the key shown once', async () => {
      const admin = await signIn(app, adminEmail);
      const page = await admin.get(`/teams/${team}`);
      assert.equal(page.status, 200);
      assert.ok(textOf(page.text).includes(member.username));
      assert.match(page.text, /Invite a new member/);
      assert.match(page.text, /<option value="service">Service<\/option>/);
      const csrf = WebBrowser.csrf(page.text);
      const newcomer = await app.createUser({ org, username: `nick-${dialect}` });

      // Add a person, change the role, remove.
      let r = await admin.post(`/teams/${team}/members`, { csrf_token: csrf, kind: 'user', name: newcomer.username, role: 'viewer' });
      assert.equal(r.status, 303);
      assert.equal(r.location, `/teams/${team}`);
      assert.match(textOf((await admin.get(`/teams/${team}`)).text), new RegExp(`${newcomer.username} was added as viewer`));
      r = await admin.post(`/teams/${team}/members/${newcomer.username}`, { csrf_token: csrf, role: 'admin' });
      assert.equal(r.status, 303);
      let members = (await app.request('GET', `/gateway/v1/teams/${team}`, { key: adminKey })).body.members;
      assert.equal(members.find((m: any) => m.username === newcomer.username).role, 'admin');
      r = await admin.post(`/teams/${team}/members/${newcomer.username}/remove`, { csrf_token: csrf });
      assert.equal(r.status, 303);
      members = (await app.request('GET', `/gateway/v1/teams/${team}`, { key: adminKey })).body.members;
      assert.ok(!members.some((m: any) => m.username === newcomer.username));
      // A name that is not a user of the organization: the page again, with the problem.
      r = await admin.post(`/teams/${team}/members`, { csrf_token: csrf, kind: 'user', name: 'nobody-here', role: 'viewer' });
      assert.equal(r.status, 400, 'the form again, not a 404 page');
      assert.doesNotMatch(r.text, /<h1>Not found<\/h1>/);
      assert.match(r.text, /<input name="name" required maxlength="100" value="nobody-here"[^>]* aria-invalid="true" aria-describedby="invite-name-problem"><span class="field-error" id="invite-name-problem">no one in your organization has the username &quot;nobody-here&quot;/, 'the message beside the field, with what was typed');
      assert.match(r.text, /<option value="viewer" selected>/, 'the role chosen is kept');
      assert.match(r.text, /<label data-role-field>Role/, 'the role selector the script hides for Service');

      // "Invite a new member, choose Service, click Create": the key is shown once, there.
      // The role is a person's: for a service the server ignores it (the script hides the selector), whatever it says.
      r = await admin.post(`/teams/${team}/members`, { csrf_token: csrf, kind: 'service', name: 'Nightly retraining', role: 'no-such-role' });
      assert.equal(r.status, 303);
      const withKey = await admin.get(`/teams/${team}`);
      const saKey = withKey.text.match(KEY)?.[0];
      assert.ok(saKey?.startsWith('tgs-'), 'the service account key is shown');
      assert.match(textOf(withKey.text), /will not be shown again/);
      const who = await me(app, saKey!);
      assert.equal(who.status, 200);
      assert.equal(who.body.principal_type, 'service_account');
      const listed = await admin.get(`/teams/${team}`);
      assert.equal(listed.text.match(KEY), null, 'shown once');
      assert.match(textOf(listed.text), /nightly-retraining/);

      // A plain member sees members and accounts, but no management forms; posting anyway is refused.
      const m = await signIn(app, member.email);
      const memberView = await m.get(`/teams/${team}`);
      assert.equal(memberView.status, 200);
      assert.doesNotMatch(memberView.text, /Invite a new member/);
      assert.match(textOf(memberView.text), /nightly-retraining/);
      const refused = await m.post(`/teams/${team}/members/${member.username}`, { csrf_token: WebBrowser.csrf(memberView.text), role: 'admin' });
      assertErrorPage(refused, 403, 'insufficient_role');

      // Delete the service account: its key stops.
      const saId = /action="\/teams\/[^/]+\/service-accounts\/([0-9a-f-]{36})\/delete"/.exec(listed.text)?.[1];
      assert.ok(saId);
      r = await admin.post(`/teams/${team}/service-accounts/${saId}/delete`, { csrf_token: csrf });
      assert.equal(r.status, 303);
      assert.equal((await me(app, saKey!)).status, 401);
    });

    test('teams page: an org admin sees every team and creates one, a member sees theirs; a Teams entry in the navigation', async () => {
      const other = `other-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: other } })).status, 201);
      const admin = await signIn(app, adminEmail);
      const list = await admin.get('/teams');
      assert.equal(list.status, 200, list.text.slice(0, 500));
      assert.match(list.text, /<a href="\/teams" aria-current="page">Teams<\/a>/);
      for (const t of [team, other]) assert.ok(list.text.includes(`<a href="/teams/${t}"><code>${t}</code></a>`), `lists ${t}`);
      assert.match(list.text, /Create a team/);
      const csrf = WebBrowser.csrf(list.text);
      // A bad name: the form again, the API's message beside the field.
      const bad = await admin.post('/teams', { csrf_token: csrf, name: 'Not A Slug' });
      assert.equal(bad.status, 400);
      assert.match(bad.text, /value="Not A Slug"[^>]* aria-invalid="true" aria-describedby="team-name-problem"><span class="field-error" id="team-name-problem">must be lowercase letters/);
      // Taken: the form again with the reason.
      const taken = await admin.post('/teams', { csrf_token: csrf, name: team });
      assert.equal(taken.status, 409);
      assert.match(textOf(taken.text), /already taken/);
      const name = `made-on-page-${dialect}`;
      const made = await admin.post('/teams', { csrf_token: csrf, name });
      assert.equal(made.status, 303);
      assert.equal(made.location, '/teams');
      const after = await admin.get('/teams');
      assert.match(textOf(after.text), new RegExp(`Team ${name} was created, with you as its admin`));
      assert.ok(after.text.includes(`href="/teams/${name}"`));
      const viaApi = await app.request('GET', `/gateway/v1/teams/${name}`, { key: adminKey });
      assert.equal(viaApi.status, 200);
      assert.equal(viaApi.body.members[0].role, 'admin');
      // A member: their own teams only, no create form; the navigation has Teams for everyone.
      const m = await signIn(app, member.email);
      const mine = await m.get('/teams');
      assert.equal(mine.status, 200);
      assert.ok(mine.text.includes(`href="/teams/${team}"`));
      assert.ok(!mine.text.includes(`href="/teams/${other}"`), 'not a team the member is not in');
      assert.doesNotMatch(mine.text, /Create a team/);
      assert.match((await m.get('/settings')).text, /<a href="\/teams">Teams<\/a>/);
      // Without a session: the login page, back to /teams afterwards.
      const anon = await new WebBrowser(app).get('/teams');
      assert.equal(anon.status, 302);
      assert.equal(anon.location, '/login?return_to=%2Fteams');
    });

    test('team page: a service account\'s keys — new key shown once, rotate with the old key marked in its grace period, revoke', async () => {
      const admin = await signIn(app, adminEmail);
      let page = await admin.get(`/teams/${team}`);
      const csrf = WebBrowser.csrf(page.text);
      assert.equal((await admin.post(`/teams/${team}/members`, { csrf_token: csrf, kind: 'service', name: `Key holder ${dialect}` })).status, 303);
      page = await admin.get(`/teams/${team}`);
      const first = page.text.match(KEY)![0];
      const saId = /action="\/teams\/[^/]+\/service-accounts\/([0-9a-f-]{36})\/keys"/.exec(page.text)?.[1];
      assert.ok(saId, 'the new-key form of the account');
      page = await admin.get(`/teams/${team}`);
      assert.ok(page.text.includes(`<code>${first.slice(0, 10)}</code>`), 'its first key, listed by key ID');
      assert.match(page.text, new RegExp(`API keys of <code>key-holder-${dialect}</code>`));

      // New key: shown once, works.
      let r = await admin.post(`/teams/${team}/service-accounts/${saId}/keys`, { csrf_token: csrf, key_for: saId!, name: 'second', expires_in_days: '30' });
      assert.equal(r.status, 303);
      assert.equal(r.location, `/teams/${team}`);
      page = await admin.get(`/teams/${team}`);
      const second = page.text.match(KEY)![0];
      assert.ok(second.startsWith('tgs-') && second !== first);
      assert.equal((await me(app, second)).status, 200);
      assert.equal((await admin.get(`/teams/${team}`)).text.match(KEY), null, 'shown once');
      // A bad name: the form again, the message beside that account's field.
      r = await admin.post(`/teams/${team}/service-accounts/${saId}/keys`, { csrf_token: csrf, key_for: saId!, name: 'x'.repeat(101) });
      assert.equal(r.status, 400);
      assert.match(r.text, new RegExp(`<span class="field-error" id="key-name-problem-${saId}">must be at most 100 characters`));

      // Rotate with a grace period: a new key, the old one still works and is marked with its end.
      const keys = (await app.request('GET', `/gateway/v1/service-accounts/${saId}/keys`, { key: adminKey })).body.keys;
      const firstId = keys.find((k: any) => k.key_id === first.slice(0, 10)).id;
      r = await admin.post(`/teams/${team}/service-accounts/${saId}/keys/${firstId}/rotate`, { csrf_token: csrf, grace_seconds: '3600' });
      assert.equal(r.status, 303, r.text.slice(0, 500));
      page = await admin.get(`/teams/${team}`);
      const successor = page.text.match(KEY)![0];
      assert.match(textOf(page.text), /keeps working until \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
      assert.equal((await me(app, first)).status, 200, 'the old key works in its grace period');
      assert.equal((await me(app, successor)).status, 200);
      const row = new RegExp(`<tr class="grace">\\n<td><code>${first.slice(0, 10)}</code></td>\\n<td>[^<]*<span class="badge warn" data-grace>old key, grace period until <time datetime="([^"]+)"`).exec(page.text);
      assert.ok(row, 'the old key is marked as in its grace period');
      assert.ok(Math.abs(Date.parse(row[1]!) - Date.now() - 3600_000) < 120_000, 'with the end of the grace period');
      // Rotated once: no second Rotate on the old key.
      assert.ok(!page.text.includes(`/keys/${firstId}/rotate`));

      // Revoke: it stops at once. A key of someone else is not found through this account's forms.
      const successorId = (await app.request('GET', `/gateway/v1/service-accounts/${saId}/keys`, { key: adminKey })).body.keys.find((k: any) => k.key_id === successor.slice(0, 10)).id;
      r = await admin.post(`/teams/${team}/service-accounts/${saId}/keys/${successorId}/revoke`, { csrf_token: csrf });
      assert.equal(r.status, 303);
      assert.match(textOf((await admin.get(`/teams/${team}`)).text), /was revoked: it stops working at once/);
      assert.equal((await me(app, successor)).status, 401);
      const personal = (await app.request('GET', '/gateway/v1/me/keys', { key: adminKey })).body.keys[0].id;
      assertErrorPage(await admin.post(`/teams/${team}/service-accounts/${saId}/keys/${personal}/revoke`, { csrf_token: csrf }), 404, 'not_found');
      assert.equal((await me(app, adminKey)).status, 200);

      // A plain member sees the account but not its keys, and cannot make one.
      const m = await signIn(app, member.email);
      const memberView = await m.get(`/teams/${team}`);
      assert.doesNotMatch(memberView.text, /API keys of/);
      const refused = await m.post(`/teams/${team}/service-accounts/${saId}/keys`, { csrf_token: WebBrowser.csrf(memberView.text), key_for: saId!, name: 'sneaky' });
      assert.equal(refused.status, 403);
      assert.equal(refused.text.match(KEY), null);
    });

    test('another organization: its team is a 404 page; standard plan: service accounts explained, not offered', async () => {
      const created = await app.request('POST', '/gateway/v1/orgs', { key: adminKey, body: { slug: `std-${dialect}`, name: 'Standard Co', plan: 'standard' } });
      assert.equal(created.status, 201, created.text);
      const stdAdmin = await app.request('POST', `/gateway/v1/orgs/std-${dialect}/users`, { key: adminKey, body: { email: `boss@std-${dialect}.example`, username: `boss-${dialect}`, role: 'admin' } });
      assert.equal(stdAdmin.status, 201, stdAdmin.text);
      const boss = await signIn(app, `boss@std-${dialect}.example`);
      const csrf = WebBrowser.csrf((await boss.get('/settings')).text);
      // The organization's own team...
      const home = await boss.get('/settings');
      assert.equal(home.status, 200);
      // ...and the other organization's, which does not exist for this person.
      const foreign = await boss.get(`/teams/${team}`);
      assertErrorPage(foreign, 404, 'not_found');
      assert.ok(!foreign.text.includes(member.username), 'nothing of the other organization');
      const write = await boss.post(`/teams/${team}/members`, { csrf_token: csrf, kind: 'user', name: `boss-${dialect}`, role: 'admin' });
      assertErrorPage(write, 404, 'not_found');

      const teamName = `std-team-${dialect}`;
      const viaApi = await boss.request('POST', `/gateway/v1/orgs/std-${dialect}/teams`, { json: { name: teamName }, headers: { 'x-csrf-token': csrf, accept: 'application/json' } });
      assert.equal(viaApi.status, 201, viaApi.text);
      const page = await boss.get(`/teams/${teamName}`);
      assert.equal(page.status, 200);
      assert.match(textOf(page.text), /Service accounts are an enterprise feature/);
      const sa = await boss.post(`/teams/${teamName}/members`, { csrf_token: csrf, kind: 'service', name: 'nightly' });
      assert.equal(sa.status, 403);
      assert.match(textOf(sa.text), /enterprise feature/);
      assert.equal(sa.text.match(KEY), null);
    });

    test('a member cannot see or use the admin page', async () => {
      const m = await signIn(app, member.email);
      const settings = await m.get('/settings');
      assert.doesNotMatch(settings.text, /href="\/admin"/, 'no admin link for a member');
      assertErrorPage(await m.get('/admin'), 403, 'insufficient_role');
      const csrf = WebBrowser.csrf(settings.text);
      assertErrorPage(await m.post('/admin/policies', { csrf_token: csrf, disable_personal_keys: 'on' }), 403, 'insufficient_role');
      assertErrorPage(await m.post('/admin/users', { csrf_token: csrf, email: 'sneaky@x.example', username: 'sneaky', role: 'admin' }), 403, 'insufficient_role');
      assertErrorPage(await m.post(`/admin/users/${member.username}/role`, { csrf_token: csrf, role: 'admin' }), 403, 'insufficient_role');
      assert.equal((await me(app, member.key)).body.orgs[0].role, 'member');
    });

    test('admin: an SSO connection from the form against a real IdP — problems field by field, test, sign-in through it, disable, delete', async () => {
      await okta.setClients([{ client_id: `web-spa-${dialect}`, kind: 'implicit', redirect_uris: [callback] }]);
      const admin = await signIn(app, adminEmail);
      const page = await admin.get('/admin');
      assert.equal(page.status, 200);
      assert.ok(page.text.includes(callback), 'the callback URI to register is shown');
      const csrf = WebBrowser.csrf(page.text);

      // Wrong issuer and an unknown team: nothing saved, every problem named, input kept.
      const bad = await admin.post('/admin/sso', {
        csrf_token: csrf,
        issuer: `${okta.origin}/not-an-issuer`,
        client_id: `web-spa-${dialect}`,
        flow: 'implicit',
        response_mode: 'form_post',
        scopes: 'openid email profile groups',
        domains: `web-${dialect}.test`,
        group_roles: `Engineers,no-such-team,member`,
        jit: 'on',
        enabled: 'on',
      });
      assert.equal(bad.status, 422, bad.text.slice(0, 500));
      const badText = textOf(bad.text);
      assert.match(badText, /issuer : .*answered HTTP 404/);
      assert.match(badText, /group_roles : group_roles names the team "no-such-team"/);
      assert.ok(bad.text.includes(`value="${okta.origin}/not-an-issuer"`), 'what was typed is kept');
      const invalid = await admin.post('/admin/sso', { csrf_token: csrf, issuer: 'not a url', client_id: '', flow: 'implicit', response_mode: 'form_post' });
      assert.equal(invalid.status, 400);
      assert.match(textOf(invalid.text), /issuer : must be a URL/);
      // A misspelt role is the API's own refusal beside the field, not a rule saved with another role or team.
      const typo = await admin.post('/admin/sso', { csrf_token: csrf, issuer: okta.issuer, client_id: `web-spa-${dialect}`, flow: 'implicit', response_mode: 'form_post', group_roles: 'eng,ml,admn' });
      assert.equal(typo.status, 400, typo.text.slice(0, 500));
      assert.match(textOf(typo.text), /group_roles\.0\.role : must be one of admin, member, viewer/);
      assert.ok(typo.text.includes('eng,ml,admn'), 'what was typed is kept');
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/sso`, { key: adminKey })).body.connections.length, 0);

      const ok = await admin.post('/admin/sso', {
        csrf_token: csrf,
        issuer: okta.issuer,
        client_id: `web-spa-${dialect}`,
        flow: 'implicit',
        response_mode: 'form_post',
        scopes: 'openid email profile groups',
        domains: `web-${dialect}.test`,
        group_roles: `Engineers,${team},member`,
        jit: 'on',
        enabled: 'on',
      });
      assert.equal(ok.status, 303, ok.text.slice(0, 800));
      const listed = await admin.get('/admin');
      assert.match(textOf(listed.text), new RegExp(`Register ${callback.replace(/[/.]/g, '\\$&')} as the callback`));
      const conn = (await app.request('GET', `/gateway/v1/orgs/${org}/sso`, { key: adminKey })).body.connections[0];
      assert.equal(conn.issuer, okta.issuer);
      assert.deepEqual(conn.domains, [`web-${dialect}.test`]);
      assert.deepEqual(conn.group_roles, [{ group: 'Engineers', team, role: 'member' }]);
      assert.equal(conn.jit, true);

      // Test: the result on the page.
      const tested = await admin.post(`/admin/sso/${conn.id}/test`, { csrf_token: csrf });
      assert.equal(tested.status, 303);
      assert.match(textOf((await admin.get('/admin')).text), /Test passed/);

      // Someone signs in through it (JIT, group rule).
      okta.addUser({ sub: `zoe-${dialect}`, email: `zoe@web-${dialect}.test`, name: 'Zoe', preferred_username: `zoe-${dialect}`, groups: ['Engineers'] });
      const zoe = new WebBrowser(app);
      const start = await zoe.get(`/login?email=zoe@web-${dialect}.test`, { 'sec-fetch-site': 'same-origin' });
      assert.equal(start.status, 303);
      const answer = await driveIdpLogin(start.location!, `zoe-${dialect}`);
      assert.equal(answer.kind, 'form_post');
      const landed = await zoe.post('/login/callback', (answer as { fields: Record<string, string> }).fields);
      assert.equal(landed.status, 303);
      assert.equal(landed.location, '/settings');
      const zoeSettings = await zoe.get('/settings');
      assert.equal(zoeSettings.status, 200);
      assert.ok(textOf(zoeSettings.text).includes(team), 'the group rule made Zoe a member of the team');

      // Disable: the page says so; a new sign-in is refused. Then delete.
      assert.equal((await admin.post(`/admin/sso/${conn.id}/enabled`, { csrf_token: csrf, enabled: 'false' })).status, 303);
      assert.match(textOf((await admin.get('/admin')).text), /is disabled/);
      assert.equal((await new WebBrowser(app).get(`/login?email=zoe@web-${dialect}.test`)).status, 404);
      assert.equal((await admin.post(`/admin/sso/${conn.id}/enabled`, { csrf_token: csrf, enabled: 'true' })).status, 303);
      assert.equal((await admin.post(`/admin/sso/${conn.id}/delete`, { csrf_token: csrf })).status, 303);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/sso`, { key: adminKey })).body.connections.length, 0);
    });

    test('admin: policies (with the require_sso lockout guard), users, and the audit log newest first, paged', async () => {
      const admin = await signIn(app, adminEmail);
      const csrf = WebBrowser.csrf((await admin.get('/admin')).text);
      // No enabled SSO connection: requiring SSO would lock everyone out.
      const locked = await admin.post('/admin/policies', { csrf_token: csrf, require_sso: 'on' });
      assert.equal(locked.status, 409);
      assert.match(textOf(locked.text), /has no enabled SSO connection/);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}`, { key: adminKey })).body.policies.require_sso, false);

      // Disable personal keys and cap key lifetime: settings follow.
      let r = await admin.post('/admin/policies', { csrf_token: csrf, disable_personal_keys: 'on', max_key_lifetime_days: '30' });
      assert.equal(r.status, 303);
      assert.deepEqual((await app.request('GET', `/gateway/v1/orgs/${org}`, { key: adminKey })).body.policies, { require_sso: false, disable_personal_keys: true, max_key_lifetime_days: 30 });
      const m = await signIn(app, member.email);
      const settings = await m.get('/settings');
      assert.match(textOf(settings.text), /policy disables creating personal API keys/);
      const refused = await m.post('/settings/keys', { csrf_token: WebBrowser.csrf(settings.text), name: 'nope' });
      assert.equal(refused.status, 403);
      assert.match(textOf(refused.text), /disables personal API key creation/);
      r = await admin.post('/admin/policies', { csrf_token: csrf, max_key_lifetime_days: '' });
      assert.equal(r.status, 303);
      assert.deepEqual((await app.request('GET', `/gateway/v1/orgs/${org}`, { key: adminKey })).body.policies, { require_sso: false, disable_personal_keys: false, max_key_lifetime_days: null });

      // Users: pre-provision, role change, deactivate (their key stops), reactivate; the last admin is kept.
      r = await admin.post('/admin/users', { csrf_token: csrf, email: `pat@${org}.example`, username: `pat-${dialect}`, role: 'viewer', display_name: 'Pat <b>' });
      assert.equal(r.status, 303);
      const users = await admin.get('/admin');
      assert.ok(users.text.includes('Pat &lt;b&gt;'), 'names are escaped');
      assert.equal((await admin.post(`/admin/users/pat-${dialect}/role`, { csrf_token: csrf, role: 'member' })).status, 303);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/users/pat-${dialect}`, { key: adminKey })).body.role, 'member');
      assert.equal((await admin.post(`/admin/users/${member.username}/status`, { csrf_token: csrf, status: 'deactivated' })).status, 303);
      assert.equal((await me(app, member.key)).status, 401, 'a deactivated person\'s key stops');
      const gone = await m.get('/settings');
      assert.equal(gone.status, 302, 'and their session');
      assert.equal((await admin.post(`/admin/users/${member.username}/status`, { csrf_token: csrf, status: 'active' })).status, 303);
      assert.equal((await me(app, member.key)).status, 200);
      const lastAdmin = await admin.post(`/admin/users/${org}-admin/role`, { csrf_token: csrf, role: 'member' });
      assert.equal(lastAdmin.status, 409);
      assert.match(textOf(lastAdmin.text), /at least one active admin/);

      // Audit log: newest first, 50 a page, older pages by cursor.
      for (let i = 0; i < 55; i++) assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies: { max_key_lifetime_days: i % 2 ? 30 : null } } })).status, 200);
      const first = await admin.get('/admin');
      const rows = [...first.text.matchAll(/<tr>\n<td><time datetime="([^"]+)"/g)].map((x) => x[1]!);
      assert.equal(rows.length, 50);
      assert.deepEqual([...rows].sort().reverse(), rows, 'newest first');
      assert.match(first.text, /<code>org\.update<\/code>/);
      const older = /href="(\/admin\?before=\d+)#audit"/.exec(first.text)?.[1];
      assert.ok(older, 'a link to older events');
      const second = await admin.get(older!);
      assert.equal(second.status, 200);
      const rows2 = [...second.text.matchAll(/<tr>\n<td><time datetime="([^"]+)"/g)].map((x) => x[1]!);
      assert.ok(rows2.length > 0);
      assert.ok(rows2[0]! <= rows.at(-1)!, 'the next page continues where the first ended');
      let last = second;
      for (let i = 0; i < 20; i++) {
        const next = /href="(\/admin\?before=\d+)#audit"/.exec(last.text)?.[1];
        if (!next) break;
        last = await admin.get(next);
      }
      assert.match(last.text, /<code>org\.bootstrap<\/code>/, 'the oldest event is on the last page');
    });

    test('one layout for sign-in, error and signed-in pages; an unknown path is a page for a browser and JSON for an API client; the favicon', async () => {
      const anon = new WebBrowser(app);
      const signedIn = await signIn(app, member.email);
      const pages = [
        await anon.get('/login'),
        await anon.get('/login/callback?error=access_denied&state=nope'),
        await signedIn.get('/settings'),
        await signedIn.get('/teams/no-such-team'),
        await anon.get('/no-such-page'),
      ];
      for (const p of pages) {
        assert.match(p.headers.get('content-type') ?? '', /text\/html/, p.text.slice(0, 200));
        assert.match(p.text, /<link rel="stylesheet" href="\/static\/web\/web\.css">/, 'the one stylesheet');
        assert.match(p.text, /<header class="top">\n<a class="brand" href="\/settings">trackgate<\/a>/, 'the one header');
        assert.match(p.text, /<link rel="icon" href="\/favicon\.ico"/);
      }
      // An unknown path: the 404 page for a browser, in the layout...
      const missing = pages[4]!;
      assertErrorPage(missing, 404, 'not_found');
      assert.match(textOf(missing.text), /Not found/);
      assert.doesNotMatch(missing.text, /<nav aria-label="Main">/, 'no one signed in: no navigation');
      assert.deepEqual(missing.setCookies, [], 'no session made for a visitor');
      // ...with the signed-in person's header and theme where there is one, under the pages' own paths and elsewhere.
      assert.equal((await signedIn.post('/settings/theme', { csrf_token: WebBrowser.csrf(pages[2]!.text), theme: 'dark' })).status, 303);
      for (const path of ['/settings/no-such-page', '/no-such-page']) {
        const missingSignedIn = await signedIn.get(path);
        assertErrorPage(missingSignedIn, 404, 'not_found');
        assert.match(missingSignedIn.text, /<nav aria-label="Main">/, path);
        assert.equal(htmlClass(missingSignedIn), 'theme-dark', path);
      }
      assert.equal((await signedIn.post('/settings/theme', { csrf_token: WebBrowser.csrf(pages[2]!.text), theme: 'system' })).status, 303);
      // ...and the JSON answer for an API client, and for a browser under the API's paths.
      const api = await anon.get('/no-such-page', { accept: 'application/json' });
      assert.equal(api.status, 404);
      assert.equal(JSON.parse(api.text).error.code, 'not_found');
      const underApi = await anon.get('/gateway/v1/no-such-thing');
      assert.equal(underApi.status, 404);
      assert.match(underApi.headers.get('content-type') ?? '', /application\/json/);
      // A POST nobody answers stays JSON too (no form led there).
      assert.match((await anon.post('/no-such-page', { a: 'b' })).headers.get('content-type') ?? '', /application\/json/);
      // The favicon: a small SVG, cached for long (every other answer is no-store).
      const icon = await anon.get('/favicon.ico', { accept: 'image/*' });
      assert.equal(icon.status, 200);
      assert.match(icon.headers.get('content-type') ?? '', /image\/svg\+xml/);
      assert.match(icon.headers.get('cache-control') ?? '', /public, max-age=\d{7,}/);
      assert.match(icon.text, /^<svg /);
    });

    test('names people and keys are given are escaped on every page', async () => {
      const evil = `<script>alert(1)</script>`;
      const b = await signIn(app, adminEmail);
      const csrf = WebBrowser.csrf((await b.get('/settings')).text);
      assert.equal((await b.post('/settings/keys', { csrf_token: csrf, name: evil })).status, 303);
      const page = await b.get('/settings');
      assert.ok(!page.text.includes(evil));
      assert.ok(page.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
      const bad = await b.get(`/teams/${encodeURIComponent('"><img src=x onerror=alert(1)>')}`);
      assert.equal(bad.status, 404);
      assert.ok(!bad.text.includes('<img src=x'));
      // Using the API with the session cookie still needs the header (the form field is for pages).
      const api = await b.request('POST', '/gateway/v1/me/keys', { json: { name: 'x' }, headers: { accept: 'application/json' } });
      assert.equal(api.status, 403);
    });
  });
}
