/**
 * The pages in a real browser (Debian's headless Chromium driven by
 * playwright-core): SSO sign-in through a real IdP (implicit, form_post and
 * fragment), a key made, used through the proxy, rotated and revoked from the
 * page, a service account created on the team page, the theme applied at once
 * and before first paint, axe-core in both themes, a 390 px viewport, and
 * markup typed by users staying inert. Every wait is on a real event
 * (navigation, a selector, a response), never on a timer.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { basic, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { startOktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import type { OktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import { freePort } from './support/net.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { loginLinkPath } from './support/web.ts';

const CHROMIUM = '/usr/bin/chromium';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const KEY = /tg[ps]-[A-Za-z0-9]{40}/;
const XSS = '<img src=x onerror="window.__xss=1">';
/** Generous: CI machines are slow, and a flaky browser test blocks everything. */
const TIMEOUT = 30_000;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

describe('pages in a real browser (sqlite)', { skip: existsSync(CHROMIUM) ? false : `SKIPPED: ${CHROMIUM} is absent (.ci/run installs Debian's chromium)`, timeout: 240_000 }, () => {
  let browser: Browser;
  let app: TestApp;
  let idp: OktaLikeIdp;
  let upstream: StubUpstream;
  let org = '';
  let adminKey = '';
  let adminEmail = '';
  let connectionId = '';
  const team = 'ml';
  const domain = 'brw.test';

  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'], timeout: 60_000 });
    idp = await startOktaLikeIdp();
    upstream = await startUpstream();
    const port = await freePort();
    app = await startApp('sqlite', { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true, upstreamUrl: upstream.url });
    const callback = `http://127.0.0.1:${port}/login/callback`;
    await idp.setClients([{ client_id: 'brw-spa', kind: 'implicit', redirect_uris: [callback] }]);
    idp.addUser({ sub: 'zoe', email: `zoe@${domain}`, name: 'Zoe', preferred_username: 'zoe', groups: ['Engineers'] });
    idp.addUser({ sub: 'yan', email: `yan@${domain}`, name: 'Yan', preferred_username: 'yan', groups: ['Engineers'] });
    const b = await app.bootstrap({ org: 'brw', plan: 'enterprise' });
    org = b.org;
    adminKey = b.adminKey;
    adminEmail = `admin@${org}.example`;
    assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
    const conn = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, {
      key: adminKey,
      body: { issuer: idp.issuer, client_id: 'brw-spa', flow: 'implicit', response_mode: 'form_post', scopes: ['openid', 'email', 'profile', 'groups'], domains: [domain], group_roles: [{ group: 'Engineers', team, role: 'member' }], jit: true },
    });
    assert.equal(conn.status, 201, conn.text);
    connectionId = conn.body.id;
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    await upstream?.close();
    await idp?.close();
  });

  async function newPage(width = 1280, options: { bypassCSP?: boolean; colorScheme?: 'light' | 'dark' } = {}): Promise<{ context: BrowserContext; page: Page; dialogs: string[] }> {
    const context = await browser.newContext({ viewport: { width, height: 900 }, ...options });
    context.setDefaultTimeout(TIMEOUT);
    context.setDefaultNavigationTimeout(TIMEOUT);
    const page = await context.newPage();
    const dialogs: string[] = [];
    // Revoke forms ask "are you sure?" (data-confirm); any other dialog is recorded and fails the XSS probe.
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      void (d.type() === 'confirm' ? d.accept() : d.dismiss());
    });
    return { context, page, dialogs };
  }

  /** Through the IdP's own pages: the email on /login, the IdP's sign-in and consent, back to /settings. */
  async function ssoSignIn(page: Page, login: string, email: string): Promise<void> {
    await page.goto(`${app.url}/login`);
    await page.fill('#email', email);
    await Promise.all([page.waitForURL((u) => u.origin === idp.origin), page.click('button[type=submit]')]);
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'x');
    // A consent prompt may follow (first sign-in of this user at this client); then the answer goes back to trackgate.
    // Whichever comes first is awaited (both wait on the page itself, not on a timer); the loser is left to fail quietly.
    const landed = page.waitForURL(`${app.url}/settings`).then(() => 'landed' as const);
    await page.click('button[type=submit]');
    const consent = page.locator('form:has(input[name=prompt][value=consent]) button[type=submit]');
    const asked = consent.waitFor({ state: 'visible' }).then(() => 'consent' as const);
    landed.catch(() => {});
    asked.catch(() => {});
    if ((await Promise.race([landed, asked])) === 'consent') await consent.click();
    await landed;
  }

  /** A one-time login link opened in the browser and its button pressed, as an admin gets it from `trackgate login-link`. */
  async function linkSignIn(page: Page, email: string): Promise<void> {
    await page.goto(app.url + (await loginLinkPath(app, email)));
    await Promise.all([page.waitForURL(`${app.url}/settings`), page.click('form button[type=submit]')]);
  }

  async function submitAndWait(page: Page, click: () => Promise<void>): Promise<void> {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), click()]);
  }

  async function newKeyOnPage(page: Page): Promise<string> {
    const text = (await page.textContent('#new-key')) ?? '';
    const key = KEY.exec(text)?.[0];
    assert.ok(key, `a new key is shown: ${text}`);
    // For run-tests.mjs' log redaction check, as app.request does for the keys it sees.
    app.keys.add(key);
    return key;
  }

  async function throughProxy(key: string): Promise<{ status: number; user: string | undefined }> {
    upstream.reset();
    const r = await fetch(`${app.url}/api/v1/runs`, { headers: { authorization: basic(key) } });
    await r.arrayBuffer();
    const seen = upstream.requests.at(-1);
    const user = r.status === 200 ? (seen?.headers['x-trackgate-user'] as string | undefined) : undefined;
    return { status: r.status, user };
  }

  test('SSO sign-in in the browser: implicit form_post, then fragment, lands on /settings signed in', async () => {
    const { context, page } = await newPage();
    try {
      await ssoSignIn(page, 'zoe', `zoe@${domain}`);
      const text = (await page.textContent('main')) ?? '';
      assert.ok(text.includes(`zoe@${domain}`), 'signed in as Zoe');
      assert.ok(text.includes(team), 'the group rule made Zoe a member of the team');
    } finally {
      await context.close();
    }
    const r = await app.request('PATCH', `/gateway/v1/orgs/${org}/sso/${connectionId}`, { key: adminKey, body: { response_mode: 'fragment' } });
    assert.equal(r.status, 200, r.text);
    const second = await newPage();
    try {
      // The fragment page reads #id_token with its script and posts it back: only a real browser runs that.
      await ssoSignIn(second.page, 'yan', `yan@${domain}`);
      assert.ok(((await second.page.textContent('main')) ?? '').includes(`yan@${domain}`), 'signed in as Yan');
    } finally {
      await second.context.close();
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}/sso/${connectionId}`, { key: adminKey, body: { response_mode: 'form_post' } })).status, 200);
    }
  });

  test('a key made on /settings works through the proxy; rotated and revoked from the page; the revoked key gets 401', async () => {
    const { context, page } = await newPage();
    try {
      await ssoSignIn(page, 'zoe', `zoe@${domain}`);
      await page.fill('input[name=name]', 'browser-laptop');
      await submitAndWait(page, () => page.click('form[action="/settings/keys"] button[type=submit]'));
      const first = await newKeyOnPage(page);
      assert.deepEqual(await throughProxy(first), { status: 200, user: 'zoe' });

      // Rotate with no grace: the old key ends at once, the successor is shown once.
      const row = page.locator('tr', { has: page.locator(`code:text-is("${first.slice(0, 10)}")`) });
      await row.locator('input[name=grace_seconds]').fill('0');
      await submitAndWait(page, () => row.locator('form.rotate button[type=submit]').click());
      const second = await newKeyOnPage(page);
      assert.notEqual(second, first);
      assert.equal((await throughProxy(first)).status, 401, 'rotation with no grace ends the old key');
      assert.deepEqual(await throughProxy(second), { status: 200, user: 'zoe' });

      const row2 = page.locator('tr', { has: page.locator(`code:text-is("${second.slice(0, 10)}")`) });
      await submitAndWait(page, () => row2.locator('form[action$="/revoke"] button[type=submit]').click());
      assert.match((await page.textContent('main')) ?? '', /was revoked/);
      assert.equal((await throughProxy(second)).status, 401, 'a revoked key gets 401');
    } finally {
      await context.close();
    }
  });

  test('team page: Service → Create shows the new service account\'s key once', async () => {
    const { context, page } = await newPage();
    try {
      await linkSignIn(page, adminEmail);
      await page.goto(`${app.url}/teams/${team}`);
      const form = page.locator('form[data-invite-form]');
      await form.locator('select[name=kind]').selectOption('service');
      // The role selector disappears for a service (web.js, on the change event).
      await form.locator('[data-role-field]').waitFor({ state: 'hidden' });
      await form.locator('input[name=name]').fill('nightly-trainer');
      await submitAndWait(page, () => form.locator('button[type=submit]').click());
      const html = await page.content();
      const keys = [...new Set(html.match(new RegExp(KEY.source, 'g')) ?? [])];
      assert.equal(keys.length, 1, 'the new service account key, once');
      assert.ok(keys[0]!.startsWith('tgs-'), keys[0]);
      app.keys.add(keys[0]!);
      assert.match((await page.textContent('main')) ?? '', /nightly-trainer/);
      assert.equal((await throughProxy(keys[0]!)).status, 200, 'the service key works through the proxy');
      await page.reload();
      assert.equal((await page.content()).match(KEY), null, 'not shown again');
    } finally {
      await context.close();
    }
  });

  test('theme: dark applies at once without a reload, is kept after reload, and is in the server-rendered HTML (no flash)', async () => {
    const { context, page } = await newPage();
    try {
      await ssoSignIn(page, 'zoe', `zoe@${domain}`);
      assert.equal(await page.evaluate(() => document.documentElement.className), 'theme-system');
      let navigated = false;
      page.on('framenavigated', (f) => {
        if (f === page.mainFrame()) navigated = true;
      });
      const saved = page.waitForResponse((r) => r.url() === `${app.url}/settings/theme` && r.request().method() === 'POST');
      await page.check('input[name=theme][value=dark]');
      await page.waitForFunction(() => document.documentElement.classList.contains('theme-dark'));
      assert.ok((await saved).ok(), 'saved in the background');
      assert.equal(navigated, false, 'applied without a reload');
      // Dark really is dark: the page background is not white.
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.notEqual(bg, 'rgb(255, 255, 255)', bg);

      // Before any script runs: the HTML as the server sends it already says dark.
      const raw = await page.request.get(`${app.url}/settings`, { headers: { accept: 'text/html' } });
      assert.match(await raw.text(), /<html lang="en" class="theme-dark">/);
      // And in the browser with scripts off: still dark (nothing waits for JavaScript).
      await page.reload();
      assert.equal(await page.evaluate(() => document.documentElement.className), 'theme-dark');
      const noJs = await browser.newContext({ javaScriptEnabled: false, storageState: await context.storageState() });
      try {
        const p = await noJs.newPage();
        await p.goto(`${app.url}/teams/${team}`, { timeout: TIMEOUT });
        assert.equal(await p.getAttribute('html', 'class'), 'theme-dark');
      } finally {
        await noJs.close();
      }
    } finally {
      await context.close();
    }
  });

  const PAGES = ['/login', '/settings', '/teams', `/teams/${team}`, '/admin'];

  async function setTheme(page: Page, theme: 'light' | 'dark'): Promise<void> {
    await page.goto(`${app.url}/settings`);
    // Already chosen: no change event, nothing to save.
    if (await page.isChecked(`input[name=theme][value=${theme}]`)) return;
    const saved = page.waitForResponse((r) => r.url() === `${app.url}/settings/theme` && r.request().method() === 'POST');
    await page.check(`input[name=theme][value=${theme}]`);
    await saved;
  }

  for (const theme of ['light', 'dark'] as const) {
    test(`axe-core finds no serious or critical violation, and nothing scrolls sideways at 390 px (${theme})`, async () => {
      // axe is injected as an inline script, which the pages' CSP (script-src 'self') rightly refuses: bypassed here only.
      // /login has no signed-in person to take a theme from: it follows the device (colorScheme), as theme-system does.
      const wide = { bypassCSP: true, colorScheme: theme };
      const signedIn = await newPage(1280, wide);
      const signedOut = await newPage(1280, wide);
      const narrowIn = await newPage(390, { colorScheme: theme });
      const narrowOut = await newPage(390, { colorScheme: theme });
      try {
        await linkSignIn(signedIn.page, adminEmail);
        await setTheme(signedIn.page, theme);
        await narrowIn.context.addCookies(await signedIn.context.cookies());
        const problems: string[] = [];
        for (const path of PAGES) {
          const page = path === '/login' ? signedOut.page : signedIn.page;
          const narrow = path === '/login' ? narrowOut.page : narrowIn.page;
          await page.goto(app.url + path);
          assert.equal(new URL(page.url()).pathname, path, 'the page itself, not a redirect');
          if (path !== '/login') assert.equal(await page.getAttribute('html', 'class'), `theme-${theme}`, path);
          await page.addScriptTag({ path: AXE });
          const violations = await page.evaluate(async () => {
            const axe = (window as unknown as { axe: { run(ctx: Document, o: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
            const r = await axe.run(document, { resultTypes: ['violations'] });
            return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
          });
          for (const v of violations.filter((x) => x.impact === 'serious' || x.impact === 'critical')) {
            problems.push(`${path} [${theme}] ${v.impact} ${v.id}: ${v.help} at ${JSON.stringify(v.nodes.slice(0, 3).map((n) => n.target))}`);
          }

          await narrow.goto(app.url + path);
          assert.equal(new URL(narrow.url()).pathname, path, 'the page itself, not a redirect');
          const width = await narrow.evaluate(() => document.documentElement.scrollWidth);
          if (width > 390) problems.push(`${path} [${theme}] is ${width} px wide at a 390 px viewport`);
        }
        assert.deepEqual(problems, []);
      } finally {
        for (const p of [signedIn, signedOut, narrowIn, narrowOut]) await p.context.close();
      }
    });
  }

  test('XSS probe: markup in a key name and a team name renders as text, nothing runs', async () => {
    const { context, page, dialogs } = await newPage();
    try {
      await linkSignIn(page, adminEmail);
      await page.fill('input[name=name]', XSS);
      await submitAndWait(page, () => page.click('form[action="/settings/keys"] button[type=submit]'));
      await page.reload();
      assert.ok(((await page.textContent('main')) ?? '').includes(XSS), 'the key name shows as typed');

      await page.goto(`${app.url}/teams`);
      await page.fill('form[action="/teams"] input[name=name]', XSS);
      await submitAndWait(page, () => page.click('form[action="/teams"] button[type=submit]'));
      // Refused (not a valid team name): what was typed is kept in the field, as a value, not as markup.
      assert.match((await page.textContent('main')) ?? '', /Name must be lowercase letters/);
      assert.equal(await page.inputValue('form[action="/teams"] input[name=name]'), XSS, 'the team name is kept as typed');

      assert.equal(await page.locator('main img[src=x]').count(), 0, 'no <img> was made from the input');
      assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
      await page.goto(`${app.url}/settings`);
      assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
      assert.deepEqual(dialogs, []);
    } finally {
      await context.close();
    }
  });
});
