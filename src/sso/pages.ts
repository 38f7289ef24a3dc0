/**
 * Server-rendered pages of the login flow, in the house's one HTML system
 * (src/html/html.ts: the escaping `html` tag, the layout and its stylesheet).
 * No inline script or style: the CSP allows scripts and styles from 'self'
 * only; the fragment page's script is the static file /static/sso/fragment.js.
 */
import { html, layout } from '../html/html.ts';
import type { Html } from '../html/html.ts';
import { formTokenField } from '../http/login-form-token.ts';

/** A sign-in page: the layout (no one signed in yet, the device's theme, no script but the page's own) around one narrow card. */
function signInPage(title: string, body: Html, scripts: string[] = []): string {
  return layout({ title, theme: 'system', scripts, body: html`<section class="card narrow">
${body}
</section>` });
}

/** The hidden fields every login form posts: where to go afterwards, and the browser's form token (src/http/login-form-token.ts). */
function loginFormFields(returnTo: string, formToken: string): Html {
  return html`<input type="hidden" name="return_to" value="${returnTo}">
${formTokenField(formToken)}`;
}

export function loginPage(input: { returnTo: string; formToken: string; email?: string | undefined; error?: string | undefined; notice?: string | undefined }): string {
  return signInPage(
    'Sign in',
    html`<h1>Sign in</h1>
${input.notice ? html`<p class="muted">${input.notice}</p>` : ''}${input.error ? html`<p class="alert" role="alert">${input.error}</p>` : ''}
<form method="post" action="/login">
<label for="email">Work email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus value="${input.email ?? ''}">
${loginFormFields(input.returnTo, input.formToken)}
<button type="submit">Continue with single sign-on</button>
</form>
<p class="muted">You will be sent to your organization's identity provider.</p>`,
  );
}

/**
 * A login asked for by a link trackgate cannot tell came from its own pages
 * (another site, a mail, a bookmark), or while someone is signed in: nothing
 * starts until the person presses the button, which says where they will be
 * signed in and whom it signs out.
 */
export function continuePage(input: {
  org: string;
  target: { org: string } | { email: string };
  returnTo: string;
  formToken: string;
  signedInAs?: { username: string; org: string } | undefined;
}): string {
  const field = 'org' in input.target ? ['org', input.target.org] : ['email', input.target.email];
  const who = input.signedInAs;
  return signInPage(
    `Sign in to ${input.org}`,
    html`<h1>Sign in to ${input.org}</h1>
${
  who
    ? html`<p class="alert" role="alert">You are signed in as <strong>${who.username}</strong> of ${who.org}. Continuing signs you out of that account and signs you in with the identity provider of ${input.org}.</p>`
    : html`<p>You are about to sign in with the identity provider of <strong>${input.org}</strong>.</p>`
}
<p class="muted">If you did not ask to sign in to ${input.org}, close this page.</p>
<form method="post" action="/login">
<input type="hidden" name="${field[0]}" value="${field[1]}">
${loginFormFields(input.returnTo, input.formToken)}
<button type="submit">Continue to sign in to ${input.org}</button>
</form>
<p><a href="${who ? '/settings' : '/login'}">${who ? `Stay signed in as ${who.username}` : 'Back to the sign-in page'}</a></p>`,
  );
}

export function fragmentPage(): string {
  return signInPage(
    'Signing in',
    html`<h1>Signing in…</h1>
<p id="status" class="muted">Finishing the sign-in with your identity provider.</p>
<noscript><p class="alert">This sign-in needs JavaScript to read your identity provider's answer. Ask your administrator to use the form_post response mode or the code flow.</p></noscript>
<form id="callback" method="post" action="/login/callback"></form>`,
    ['/static/sso/fragment.js'],
  );
}

export function errorPage(input: { title: string; message: string; code: string; requestId: string; retry?: string | undefined }): string {
  return signInPage(
    input.title,
    html`<h1>${input.title}</h1>
<p class="alert" role="alert">${input.message}</p>
<p class="muted">Error <code>${input.code}</code> · request <code>${input.requestId}</code>. An administrator can find the details in trackgate's log and audit log under this request ID.</p>
<p><a href="${input.retry ?? '/login'}">Sign in again</a></p>`,
  );
}
