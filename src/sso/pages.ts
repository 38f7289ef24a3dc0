/**
 * Server-rendered pages of the login flow. No inline script or style: the
 * CSP allows scripts and styles from 'self' only; the fragment page's script
 * is the static file /static/sso/fragment.js.
 */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function layout(title: string, body: string, head = ''): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · trackgate</title>
<link rel="stylesheet" href="/static/sso/sso.css">
${head}</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** The hidden fields every login form posts: where to go afterwards, and the browser's form token (login-guard.ts). */
function loginFormFields(returnTo: string, formToken: string): string {
  return `<input type="hidden" name="return_to" value="${escapeHtml(returnTo)}">
<input type="hidden" name="form_token" value="${escapeHtml(formToken)}">`;
}

export function loginPage(input: { returnTo: string; formToken: string; email?: string | undefined; error?: string | undefined; notice?: string | undefined }): string {
  return layout(
    'Sign in',
    `<h1>Sign in</h1>
${input.notice ? `<p class="muted">${escapeHtml(input.notice)}</p>` : ''}${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
<form method="post" action="/login">
<label for="email">Work email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus value="${escapeHtml(input.email ?? '')}">
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
  return layout(
    `Sign in to ${input.org}`,
    `<h1>Sign in to ${escapeHtml(input.org)}</h1>
${
  who
    ? `<p class="error" role="alert">You are signed in as <strong>${escapeHtml(who.username)}</strong> of ${escapeHtml(who.org)}. Continuing signs you out of that account and signs you in with the identity provider of ${escapeHtml(input.org)}.</p>`
    : `<p>You are about to sign in with the identity provider of <strong>${escapeHtml(input.org)}</strong>.</p>`
}
<p class="muted">If you did not ask to sign in to ${escapeHtml(input.org)}, close this page.</p>
<form method="post" action="/login">
<input type="hidden" name="${field[0]}" value="${escapeHtml(field[1]!)}">
${loginFormFields(input.returnTo, input.formToken)}
<button type="submit">Continue to sign in to ${escapeHtml(input.org)}</button>
</form>
<p><a href="${who ? '/settings' : '/login'}">${who ? `Stay signed in as ${escapeHtml(who.username)}` : 'Back to the sign-in page'}</a></p>`,
  );
}

export function fragmentPage(): string {
  return layout(
    'Signing in',
    `<h1>Signing in…</h1>
<p id="status" class="muted">Finishing the sign-in with your identity provider.</p>
<noscript><p class="error">This sign-in needs JavaScript to read your identity provider's answer. Ask your administrator to use the form_post response mode or the code flow.</p></noscript>
<form id="callback" method="post" action="/login/callback"></form>`,
    '<script src="/static/sso/fragment.js" defer></script>\n',
  );
}

export function errorPage(input: { title: string; message: string; code: string; requestId: string; retry?: string | undefined }): string {
  return layout(
    input.title,
    `<h1>${escapeHtml(input.title)}</h1>
<p class="error" role="alert">${escapeHtml(input.message)}</p>
<p class="muted">Error <code>${escapeHtml(input.code)}</code> · request <code>${escapeHtml(input.requestId)}</code>. An administrator can find the details in trackgate's log and audit log under this request ID.</p>
<p><a href="${escapeHtml(input.retry ?? '/login')}">Sign in again</a></p>`,
  );
}
