/**
 * Screenshots of the README's tour, as a new admin sees it, with headless Chromium:
 *
 *   npm run screenshots                                   (writes docs/screenshots, shown in the README's tour)
 *   node --import tsx scripts/screenshots.ts [out-dir]     (default /tmp)
 *
 * Starts `npm run demo` itself (demo/main.ts: the gateway, the demo IdP and the demo tracking API, on 8080-8082
 * or the next free ports) and follows the tour: /login with carol@acme.test, the demo IdP's user picker, her
 * settings with a new key (light and dark), the teams, team ml with a service account just created, the admin
 * page, the guided SSO setup with a wrong issuer refused beside its field, a Test login's report, the
 * operator's one-time login link and the page for a path that does not exist. Every page is taken at a
 * 1280x800 viewport, not the whole page (the admin page is several screens long). Needs /usr/bin/chromium
 * (apt-get install chromium). Not part of `npm test`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Page } from 'playwright-core';

const out = process.argv[2] ?? '/tmp';
mkdirSync(out, { recursive: true });
const root = fileURLToPath(new URL('..', import.meta.url));

// The demo, exactly as `npm run demo` starts it; its printed lines say where everything is.
const demo = spawn(process.execPath, ['--import', 'tsx', 'demo/main.ts'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
let printed = '';
demo.stdout.setEncoding('utf8');
demo.stderr.setEncoding('utf8');
demo.stderr.on('data', (d: string) => (printed += d));
await new Promise<void>((resolve, reject) => {
  demo.stdout.on('data', (d: string) => {
    printed += d;
    if (printed.includes('trackgate demo ready')) resolve();
  });
  demo.once('exit', (code) => reject(new Error(`the demo exited (${code}) before it was ready:\n${printed}`)));
});
const found = (re: RegExp, what: string): string => {
  const m = re.exec(printed);
  if (!m?.[1]) throw new Error(`the demo did not print ${what}:\n${printed}`);
  return m[1];
};
const gateway = found(/^ {2}gateway +(http:\/\/\S+)$/m, 'its gateway URL');
const idpIssuer = found(/^ {2}demo IdP +(http:\/\/\S+)$/m, "its IdP's URL");
const loginLink = found(/^ {2}(http:\/\/\S+\/login\/link\/\S+)$/m, 'the operator\'s login link');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
const written: string[] = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  context.setDefaultTimeout(30_000);
  const errors: string[] = [];
  const watch = (p: Page) => {
    p.on('console', (m) => {
      // The refused setup form (422) and the 404 page are answered with their status: the browser says so in the console.
      if (m.type() === 'error' && !/status of (404|422)\b/.test(m.text())) errors.push(m.text());
    });
    p.on('pageerror', (e) => errors.push(e.message));
  };
  const page = await context.newPage();
  watch(page);
  const shot = async (p: Page, name: string) => {
    await p.screenshot({ path: join(out, name) });
    written.push(name);
  };
  const submit = (p: Page, click: () => Promise<void>) => Promise.all([p.waitForNavigation({ waitUntil: 'load' }), click()]);

  // 1. Sign in through SSO: the email on /login, then the user picked on the demo IdP's page.
  await page.goto(`${gateway}/login`);
  await page.fill('#email', 'carol@acme.test');
  await shot(page, 'login.png');
  await Promise.all([page.waitForURL((u) => u.href.startsWith(idpIssuer)), page.click('button[type=submit]')]);
  await shot(page, 'demo-idp.png');
  await Promise.all([page.waitForURL(`${gateway}/settings`), page.click('button.user[value=carol]')]);

  // 2. A key, in light, then the same page in dark. A theme applies at once (web.js saves it in the background):
  //    wait for that save, then reload so that the page is the server's, as after any visit.
  const setTheme = async (theme: 'light' | 'dark' | 'system') => {
    const radio = page.locator(`input[name=theme][value=${theme}]`);
    if (await radio.isChecked()) return;
    await Promise.all([page.waitForResponse((r) => r.url().endsWith('/settings/theme') && r.request().method() === 'POST'), radio.check()]);
    await page.reload();
  };
  await setTheme('light');
  await page.fill('form[action="/settings/keys"] input[name=name]', 'laptop');
  await page.fill('form[action="/settings/keys"] input[name=expires_in_days]', '90');
  await submit(page, () => page.click('form[action="/settings/keys"] button[type=submit]'));
  await shot(page, 'settings-light.png');
  await setTheme('dark');
  await page.locator('#keys').scrollIntoViewIfNeeded();
  await shot(page, 'settings-dark.png');
  await setTheme('system');

  // 3. Teams, then team ml: Service → Create; the new account's key is shown once, at the top.
  await page.goto(`${gateway}/teams`);
  await shot(page, 'teams.png');
  await Promise.all([page.waitForURL(`${gateway}/teams/ml`), page.click('a[href="/teams/ml"]')]);
  const invite = page.locator('form[data-invite-form]');
  await invite.locator('select[name=kind]').selectOption('service');
  await invite.locator('input[name=name]').fill('nightly-eval');
  await submit(page, () => invite.locator('button[type=submit]').click());
  await shot(page, 'team.png');

  // 4. The admin page: the SSO connection, with its Test and Test login buttons.
  await page.goto(`${gateway}/admin`);
  await page.locator('#sso').scrollIntoViewIfNeeded();
  await shot(page, 'admin.png');

  // 5. The guided setup for Okta, with an issuer mistyped: the problem beside the field, what was typed kept.
  await page.click('#sso-setup summary');
  await Promise.all([page.waitForURL((u) => u.searchParams.get('provider') === 'okta'), page.click('nav.providers a:text-is("Okta")')]);
  const setup = page.locator('form[action="/admin/sso"]');
  await setup.locator('input[name=issuer]').fill(`${idpIssuer}/oauth2/defualt`);
  await setup.locator('input[name=client_id]').fill('trackgate-acme');
  await setup.locator('input[name=domains]').fill('research.acme.test');
  await setup.locator('textarea[name=group_roles]').fill('research,research,member');
  await submit(page, () => setup.locator('button[type=submit]').click());
  await page.locator('#sso-setup').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot(page, 'admin-sso-setup.png');

  // 6. Test login on acme's connection, in a new tab: it asks the IdP to sign someone in afresh (prompt=login), so
  //    the demo IdP shows its picker although Carol is signed in there; she is picked again, and the report says
  //    what her sign-in would do.
  await page.goto(`${gateway}/admin`);
  const [tab] = await Promise.all([context.waitForEvent('page'), page.locator('article.conn').first().locator('form[action$="/test-login"] button[type=submit]').click()]);
  watch(tab);
  await tab.waitForLoadState();
  await Promise.all([tab.waitForURL((u) => u.href.startsWith(idpIssuer)), tab.click('a.button')]);
  await Promise.all([tab.waitForURL((u) => u.pathname === '/admin/sso/test-report'), tab.click('button.user[value=carol]')]);
  await shot(tab, 'admin-test-login.png');
  await tab.close();

  // 7. The operator's one-time login link (in a browser of its own), and a path that does not exist.
  const other = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const linkPage = await other.newPage();
  watch(linkPage);
  await linkPage.goto(loginLink);
  await shot(linkPage, 'login-link.png');
  await other.close();
  await page.goto(`${gateway}/teams/no-such-team`);
  await shot(page, 'error-404.png');

  if (errors.length) throw new Error(`the browser reported errors (CSP violations show here):\n${errors.join('\n')}`);
  process.stdout.write(`screenshots written to ${out}: ${written.join(' ')}\n`);
} finally {
  await browser.close();
  // The demo removes its temporary folder on the way out: wait for it.
  if (demo.exitCode === null) await new Promise((resolve) => {
    demo.once('exit', resolve);
    demo.kill('SIGINT');
  });
}
