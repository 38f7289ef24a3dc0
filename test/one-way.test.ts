/**
 * The pieces issue 14 made one of each: the form adapter that feeds the API's
 * own schemas, the sign-in pages in the one HTML system, the one list of safe
 * methods, the one return_to rule and the one constant-time comparison.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { equalSecrets } from '../src/crypto/equal-secrets.ts';
import { carriesCsrfToken, SAFE_METHODS } from '../src/http/csrf.ts';
import { DEFAULT_RETURN_TO, safeReturnTo } from '../src/http/return-to.ts';
import { createKeyBody } from '../src/keys/keys.routes.ts';
import { policies } from '../src/orgs/orgs.routes.ts';
import { continuePage, errorPage, fragmentPage, loginPage } from '../src/sso/pages.ts';
import { createConnectionBody, patchBody } from '../src/sso/sso.routes.ts';
import { formInput, parseGroupRules } from '../src/web/form.ts';
import type { IncomingMessage } from 'node:http';

test('the form adapter turns a form into the API schema\'s input, and the API schema judges it', () => {
  // Only the schema's fields; an empty box is not given, or none where the schema takes null; digits are numbers.
  assert.deepEqual(formInput(createKeyBody, { name: 'laptop', expires_in_days: '30', csrf_token: 't', other: 'x' }), { name: 'laptop', expires_in_days: 30 });
  assert.deepEqual(formInput(createKeyBody, { name: 'laptop', expires_in_days: '' }), { name: 'laptop' });
  assert.deepEqual(formInput(policies, { max_key_lifetime_days: '' }), { require_sso: false, disable_personal_keys: false, max_key_lifetime_days: null });
  assert.deepEqual(formInput(policies, { require_sso: 'on', max_key_lifetime_days: '90' }), { require_sso: true, disable_personal_keys: false, max_key_lifetime_days: 90 });
  // Not a number: passed as typed, so the API's schema refuses it with the API's message.
  const bad = formInput(createKeyBody, { name: 'x', expires_in_days: 'soon' });
  assert.equal(bad.expires_in_days, 'soon');
  assert.equal(createKeyBody.safeParse(bad).success, false);
  // Lists: commas, spaces or new lines; lists of objects through their line reader.
  const conn = formInput(createConnectionBody, { issuer: 'https://idp.example', client_id: 'c', scopes: 'openid email,\nprofile', domains: '', group_roles: 'eng,ml,admin', jit: 'on' }, { group_roles: parseGroupRules });
  assert.deepEqual(conn.scopes, ['openid', 'email', 'profile']);
  assert.equal(conn.domains, undefined, 'an empty list box is not given (the schema\'s default applies)');
  assert.deepEqual(conn.group_roles, [{ group: 'eng', team: 'ml', role: 'admin' }]);
  assert.equal(conn.jit, true);
  assert.equal(conn.enabled, false, 'an unticked checkbox is not sent: off');
  // A form that posts one switch is parsed with that switch alone: nothing else is touched.
  assert.deepEqual(formInput(patchBody.pick({ enabled: true }), { enabled: 'false' }), { enabled: false });
  assert.deepEqual(formInput(z.strictObject({ n: z.number().int().optional() }), { n: ' 7 ' }), { n: 7 });
});

test('the sign-in pages use the one layout and stylesheet, escape every value, and have no inline script or style', () => {
  const pages = [
    loginPage({ returnTo: '/x"><b>', formToken: 'tok', email: '"><script>alert(1)</script>', error: '<i>no</i>', notice: 'signed & out' }),
    continuePage({ org: '<org>', target: { email: 'a@b.c"' }, returnTo: '/', formToken: 'tok', signedInAs: { username: '<u>', org: 'o&o' } }),
    errorPage({ title: 'T<', message: 'M"', code: 'c<', requestId: 'r&', retry: '/login?x="1"' }),
    fragmentPage(),
  ];
  for (const page of pages) {
    assert.match(page, /<link rel="stylesheet" href="\/static\/web\/web.css">/);
    assert.doesNotMatch(page, /sso\.css/);
    assert.doesNotMatch(page, /<script>|<style|style="|<b>|<i>|<u>|<org>/, page);
    assert.match(page, /<section class="card narrow">/);
  }
  assert.match(pages[0]!, /value="&quot;&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;"/);
  assert.match(pages[0]!, /name="form_token" value="tok"/);
  assert.match(pages[2]!, /<code>c&lt;<\/code>/);
  assert.match(pages[3]!, /<script src="\/static\/sso\/fragment.js" defer><\/script>/);
  for (const page of pages.slice(0, 3)) assert.doesNotMatch(page, /<script/, 'the sign-in pages run no script (not even web.js)');
});

test('one list of safe methods (RFC 9110), one return_to default, one constant-time comparison', () => {
  assert.deepEqual([...SAFE_METHODS].sort(), ['GET', 'HEAD', 'OPTIONS']);
  assert.equal(safeReturnTo('//evil.example'), DEFAULT_RETURN_TO);
  assert.equal(safeReturnTo('//evil.example', null), null);
  assert.equal(equalSecrets('a', 'a'), true);
  assert.equal(equalSecrets('a', 'ab'), false);
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  assert.equal(carriesCsrfToken(req({ 'x-csrf-token': 's' }), 's'), true);
  assert.equal(carriesCsrfToken(req({}), 's', 's'), true, 'or the form field');
  assert.equal(carriesCsrfToken(req({ 'x-csrf-token': 'x' }), 's', 's'), false, 'the header, when sent, is the one checked');
  assert.equal(carriesCsrfToken(req({}), undefined, ''), false);
  assert.equal(carriesCsrfToken(req({}), 's'), false);
});
