/**
 * Screenshots of the web pages, as a person sees them, with headless Chromium:
 *
 *   npm run screenshots                                   (writes docs/screenshots, shown in the README's tour)
 *   node --import tsx scripts/screenshots.ts [out-dir]     (default /tmp)
 *
 * Starts trackgate on a temporary SQLite database with a local test IdP,
 * fills it with an organization, people, keys, a team, a service account and
 * an SSO connection, signs in through a one-time login link by pressing its
 * button, and writes settings-light.png, settings-dark.png, team.png,
 * admin.png, login-link.png and error-404.png. Needs /usr/bin/chromium
 * (apt-get install chromium). Not part of `npm test`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startApp } from '../test/support/app.ts';
import { startJoseIdp } from '../test/support/idp/jose-idp.ts';
import { loginLinkPath } from '../test/support/web.ts';

const out = process.argv[2] ?? '/tmp';
mkdirSync(out, { recursive: true });

const idp = await startJoseIdp({ clientId: 'trackgate-spa', path: '/oauth2/default' });
const app = await startApp('sqlite', { allowHttpIssuers: true, logLevel: 'warn' });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  const { org, adminKey } = await app.bootstrap({ org: 'acme', email: 'ada@acme.example', plan: 'enterprise' });
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await app.request(method, path, { key: adminKey, body });
    if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return r.body;
  };
  await api('PATCH', `/gateway/v1/orgs/${org}`, { name: 'Acme Research' });
  await api('POST', `/gateway/v1/orgs/${org}/teams`, { name: 'ml-platform' });
  for (const [username, role, name] of [['grace', 'member', 'Grace Hopper'], ['alan', 'viewer', 'Alan Turing'], ['katherine', 'member', 'Katherine Johnson']] as const) {
    await api('POST', `/gateway/v1/orgs/${org}/users`, { email: `${username}@acme.example`, username, role, display_name: name });
  }
  await api('PUT', '/gateway/v1/teams/ml-platform/members/grace', { role: 'admin' });
  await api('PUT', '/gateway/v1/teams/ml-platform/members/alan', { role: 'viewer' });
  await api('POST', '/gateway/v1/teams/ml-platform/service-accounts', { name: 'Nightly retraining' });
  await api('POST', '/gateway/v1/me/keys', { name: 'ci-pipeline', expires_in_days: 90 });
  await api('POST', `/gateway/v1/orgs/${org}/sso`, {
    issuer: idp.issuer,
    client_id: 'trackgate-spa',
    domains: ['acme.example'],
    group_roles: [{ group: 'ML Engineers', team: 'ml-platform', role: 'member' }],
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));

  const link = await loginLinkPath(app, 'ada@acme.example');
  await page.goto(app.url + link);
  await page.screenshot({ path: join(out, 'login-link.png'), fullPage: true });
  await Promise.all([page.waitForURL('**/settings'), page.click('button[type=submit]')]);

  // Light, with a key just created (its one-time panel), then dark. A theme applies at once (web.js saves it in the
  // background): wait for that save, then reload so the page is the server's, as after any visit.
  const setTheme = async (theme: 'light' | 'dark' | 'system') => {
    const radio = page.locator(`input[name=theme][value=${theme}]`);
    if (await radio.isChecked()) return;
    await Promise.all([page.waitForResponse((r) => r.url().endsWith('/settings/theme') && r.request().method() === 'POST'), radio.check()]);
    await page.reload();
  };
  await setTheme('light');
  await page.fill('form[action="/settings/keys"] input[name=name]', 'laptop');
  await page.fill('form[action="/settings/keys"] input[name=expires_in_days]', '30');
  await Promise.all([page.waitForURL('**/settings'), page.click('form[action="/settings/keys"] button')]);
  await page.screenshot({ path: join(out, 'settings-light.png'), fullPage: true });
  await setTheme('dark');
  await page.screenshot({ path: join(out, 'settings-dark.png'), fullPage: true });
  await setTheme('system');

  await page.goto(app.url + '/teams/ml-platform');
  await page.screenshot({ path: join(out, 'team.png'), fullPage: true });
  await page.goto(app.url + '/admin');
  await page.click('form[action$="/test"] button');
  await page.waitForLoadState('load');
  await page.click('details.create summary');
  await page.screenshot({ path: join(out, 'admin.png'), fullPage: true });
  if (errors.length) throw new Error(`the browser reported errors (CSP violations show here):\n${errors.join('\n')}`);
  await page.goto(app.url + '/teams/no-such-team');
  await page.screenshot({ path: join(out, 'error-404.png'), fullPage: true });
  errors.splice(0, errors.length, ...errors.filter((e) => !/status of 404/.test(e)));

  if (errors.length) throw new Error(`the browser reported errors (CSP violations show here):\n${errors.join('\n')}`);
  process.stdout.write(`screenshots written to ${out}: login-link.png settings-light.png settings-dark.png team.png admin.png error-404.png\n`);
} finally {
  await browser.close();
  await app.close();
  await idp.close();
}
