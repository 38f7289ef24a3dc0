/**
 * /metrics and X-Forwarded-For behind a load balancer (issue 13). The shipped
 * compose file trusted every address as a proxy, so any client's own
 * X-Forwarded-For was believed, and /metrics was answered to whatever came
 * through the (trusted) load balancer. Over HTTP.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

describe('metrics exposure and trusted proxies', () => {
  let app: TestApp;
  before(async () => {
    // The test client connects from 127.0.0.1, which is here both a trusted proxy (the LB) and, by default, allowed to scrape.
    app = await startApp('sqlite', { trustedProxies: ['127.0.0.1/8', '::1/128'] });
  });
  after(() => app?.close());

  test('a request relayed by a trusted proxy (X-Forwarded-For, Forwarded, X-Real-IP) never gets /metrics; a direct scrape does', async () => {
    assert.equal((await fetch(app.url + '/metrics')).status, 200);
    const relayed: Array<Record<string, string>> = [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }, { 'x-real-ip': '203.0.113.9' }];
    for (const headers of relayed) {
      const r = await fetch(app.url + '/metrics', { headers });
      assert.equal(r.status, 404, JSON.stringify(headers));
      assert.ok(!(await r.text()).includes('trackgate_'), 'no metrics in the answer');
    }
  });

  test('TRACKGATE_METRICS_ALLOW decides who scrapes, not TRACKGATE_TRUSTED_PROXIES', async () => {
    const other = await startApp('sqlite', { trustedProxies: ['127.0.0.1/8', '::1/128'], metricsAllow: ['192.0.2.1'] });
    try {
      assert.equal((await fetch(other.url + '/metrics')).status, 404, 'a trusted proxy that is not on the metrics list gets 404');
    } finally {
      await other.close();
    }
  });

  test('a list of trusted proxies that trusts every address is refused at start, naming the problem', () => {
    for (const all of ['0.0.0.0/0', '::/0', '10.0.0.1,0.0.0.0/0']) {
      assert.throws(() => loadConfig({ env: { TRACKGATE_TRUSTED_PROXIES: all }, configDir: '/nonexistent' }), /trusts every address/);
    }
    assert.throws(() => loadConfig({ env: { TRACKGATE_METRICS_ALLOW: '10.0.0.1/40' }, configDir: '/nonexistent' }), /not an IP address or CIDR/);
  });

  test('the shipped compose file trusts the load balancer alone, and the LB replaces a client-written X-Forwarded-For', () => {
    const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
    const trusted = /TRACKGATE_TRUSTED_PROXIES:\s*(\S+)/.exec(compose)?.[1];
    assert.equal(trusted, '172.28.0.2');
    assert.match(compose, /ipv4_address:\s*172\.28\.0\.2/);
    assert.doesNotThrow(() => loadConfig({ env: { TRACKGATE_TRUSTED_PROXIES: trusted! }, configDir: '/nonexistent' }));
    const lb = readFileSync(new URL('../deploy/nginx/compose-lb.conf', import.meta.url), 'utf8');
    assert.match(lb, /proxy_set_header X-Forwarded-For \$remote_addr;/);
  });

  test('the compose file has no default database password, and the image build context carries no secrets or local state', () => {
    const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
    assert.doesNotMatch(compose, /change-me/);
    for (const use of compose.match(/\$\{POSTGRES_PASSWORD[^}]*\}/g) ?? []) assert.match(use, /^\$\{POSTGRES_PASSWORD:\?/, `${use} must fail when unset`);
    const ignored = readFileSync(new URL('../.dockerignore', import.meta.url), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', '.git', 'data', '*.key', '*.db', 'dist']) assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
  });
});
