/**
 * `npm run demo` (demo/main.ts) as a person runs it: started as a child
 * process on free ports, it prints a ready line; the curl line it prints
 * works through the gateway against the demo API (which verifies the
 * assertion); SSO sign-ins through the demo IdP complete over plain HTTP in
 * both seeded flows, and the group rules put people in their teams; SIGINT
 * stops every part and removes the temporary folder.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Browser } from './support/idp/browser.ts';
import { driveIdpLogin } from './support/idp/drive.ts';
import { freePort } from './support/net.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('npm run demo', () => {
  let child: ChildProcess;
  let output = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  const ports = { gateway: 0, idp: 0, api: 0 };
  let gateway = '';

  before(async () => {
    ports.gateway = await freePort();
    ports.idp = await freePort();
    ports.api = await freePort();
    gateway = `http://127.0.0.1:${ports.gateway}`;
    child = spawn(process.execPath, ['--import', 'tsx', 'demo/main.ts'], {
      cwd: root,
      env: { ...process.env, DEMO_GATEWAY_PORT: String(ports.gateway), DEMO_IDP_PORT: String(ports.idp), DEMO_API_PORT: String(ports.api) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (output += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line within 60 s (a loaded machine):\n${output}`)), 60_000);
      child.stdout!.on('data', (d: string) => {
        output += d;
        if (output.includes('trackgate demo ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(({ code }) => {
        clearTimeout(timer);
        reject(new Error(`the demo exited (${code}) before it was ready:\n${output}`));
      });
    });
  });

  after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });

  test('prints where everything is, on the ports it was given', () => {
    assert.match(output, new RegExp(`gateway +${gateway}`));
    assert.match(output, new RegExp(`demo IdP +http://127\\.0\\.0\\.1:${ports.idp}`));
    assert.match(output, new RegExp(`demo API +http://127\\.0\\.0\\.1:${ports.api}`));
    assert.match(output, /alice@acme\.test/);
    assert.match(output, new RegExp(`${gateway}/login/link/[A-Za-z0-9_-]+`));
  });

  test("the printed curl line's key reaches the demo API through the gateway, which sees the identity and a verified assertion", async () => {
    const m = /curl -u api:(tgp-[A-Za-z0-9]+) (http:\/\/\S+)/.exec(output);
    assert.ok(m, output);
    const [, key, url] = m;
    assert.ok(url!.startsWith(gateway + '/'), 'through the gateway, not to the API directly');
    const res = await fetch(url!, { headers: { authorization: 'Basic ' + Buffer.from(`api:${key}`).toString('base64') } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as any;
    assert.equal(body.identity_headers['x-trackgate-user'], 'ops');
    assert.equal(body.identity_headers['x-trackgate-org'], 'acme');
    assert.equal(body.assertion.verified, true, JSON.stringify(body.assertion));
    assert.equal(body.assertion.claims.username, 'ops');
    assert.equal(body.assertion.claims.iss, gateway);

    // The tracking client's first question, answered from the same identity.
    const gql = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { authorization: 'Basic ' + Buffer.from(`api:${key}`).toString('base64'), 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query Viewer { viewer { id entity username email } }' }),
    });
    assert.equal(gql.status, 200);
    const viewer = ((await gql.json()) as any).data.viewer;
    assert.equal(viewer.username, 'ops');
    assert.equal(viewer.email, 'ops@acme.test');

    // Without a key the gateway answers, not the API; and a forged assertion sent to the API directly is not believed.
    const anon = await fetch(url!);
    assert.equal(anon.status, 401);
    const forged = await fetch(`http://127.0.0.1:${ports.api}/whoami`, { headers: { 'x-trackgate-assertion': 'eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6ImV2ZSJ9.' } });
    assert.equal(((await forged.json()) as any).assertion.verified, false);
  });

  test("the service account's curl line attributes the run to carol", async () => {
    const m = /curl -u api:(tgs-[A-Za-z0-9]+) -H 'X-WANDB-USERNAME: carol' (http:\/\/\S+)/.exec(output);
    assert.ok(m, output);
    const res = await fetch(m[2]!, { headers: { authorization: 'Basic ' + Buffer.from(`api:${m[1]}`).toString('base64'), 'x-wandb-username': 'carol' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as any;
    assert.equal(body.assertion.claims.principal_type, 'service_account');
    assert.equal(body.assertion.claims.attributed_user, 'carol');
  });

  async function startSignIn(browser: Browser, email: string): Promise<URL> {
    const start = await browser.get(`/login?email=${encodeURIComponent(email)}`, { 'sec-fetch-site': 'same-origin' });
    assert.equal(start.status, 303, start.text);
    assert.ok(start.location!.startsWith(`http://127.0.0.1:${ports.idp}/`), start.location!);
    return new URL(start.location!);
  }

  async function ssoSignIn(email: string, user: string, expect: { response_type: string; response_mode?: string }): Promise<Browser> {
    const browser = new Browser(gateway);
    const start = await startSignIn(browser, email);
    assert.equal(start.searchParams.get('response_type'), expect.response_type);
    if (expect.response_mode) assert.equal(start.searchParams.get('response_mode'), expect.response_mode);
    if (expect.response_type === 'code') assert.equal(start.searchParams.get('code_challenge_method'), 'S256');
    const answer = await driveIdpLogin(start.href, user);
    let done;
    if (answer.kind === 'form_post') {
      assert.equal(answer.action, `${gateway}/login/callback`);
      done = await browser.post('/login/callback', answer.fields);
    } else {
      const u = new URL(answer.location);
      assert.equal(u.origin + u.pathname, `${gateway}/login/callback`);
      done = await browser.get(u.pathname + u.search);
    }
    assert.equal(done.status, 303, done.text.slice(0, 500));
    assert.equal(done.location, '/settings');
    const settings = await browser.get('/settings');
    assert.equal(settings.status, 200);
    assert.match(settings.text, new RegExp(email.replace(/\./g, '\\.')));
    return browser;
  }

  async function teamsOf(browser: Browser): Promise<Record<string, string>> {
    const r = await browser.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries((JSON.parse(r.text).teams as Array<{ name: string; role: string }>).map((t) => [t.name, t.role]));
  }

  test('SSO through the demo IdP: acme by the implicit flow (form_post), group rules give the teams', async () => {
    const implicit = { response_type: 'id_token', response_mode: 'form_post' };
    const alice = await ssoSignIn('alice@acme.test', 'alice', implicit);
    assert.deepEqual(await teamsOf(alice), { ml: 'member' });
    // Her browser session reaches the demo API through the gateway, which tells it who she is.
    const whoami = await alice.get('/whoami');
    assert.equal(whoami.status, 200);
    assert.match(whoami.text, /x-trackgate-user<\/th><td><code>alice</);
    assert.match(whoami.text, /Signature verified/);
    const bob = await ssoSignIn('bob@acme.test', 'bob', implicit);
    assert.deepEqual(await teamsOf(bob), { ml: 'admin', research: 'viewer' });
    // Carol was made an admin before her first sign-in: her IdP identity links to that account by email.
    const carol = await ssoSignIn('carol@acme.test', 'carol', implicit);
    const admin = await carol.get('/admin');
    assert.equal(admin.status, 200);
  });

  test('SSO through the demo IdP: globex by the code flow with PKCE', async () => {
    const dave = await ssoSignIn('dave@globex.test', 'dave', { response_type: 'code' });
    assert.deepEqual(await teamsOf(dave), { platform: 'member' });
  });

  test('the demo IdP also answers in the fragment response mode (a connection switched to it on /admin)', async () => {
    const start = await startSignIn(new Browser(gateway), 'alice@acme.test');
    start.searchParams.set('response_mode', 'fragment');
    const answer = await driveIdpLogin(start.href, 'alice');
    assert.equal(answer.kind, 'redirect');
    const hash = new URLSearchParams(new URL((answer as { location: string }).location).hash.slice(1));
    assert.ok(hash.get('id_token'), 'an ID token in the fragment');
    assert.equal(hash.get('state'), start.searchParams.get('state'));
  });

  test('SIGINT stops every part and removes the temporary folder', async () => {
    const tmp = /data in (\S+) \(removed on exit\)/.exec(output)?.[1];
    assert.ok(tmp && existsSync(tmp), `the temporary folder is named and exists: ${tmp}`);
    child.kill('SIGINT');
    const { code } = await exited;
    assert.equal(code, 0, output);
    assert.ok(!existsSync(tmp), `${tmp} removed`);
    assert.match(output, /trackgate demo stopped/);
    for (const port of Object.values(ports)) {
      await assert.rejects(fetch(`http://127.0.0.1:${port}/`), `nothing listens on ${port} any more`);
    }
  });
});
