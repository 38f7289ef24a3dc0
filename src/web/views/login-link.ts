import { html, layout } from '../../html/html.ts';
import { formTokenField } from '../../http/login-form-token.ts';

/**
 * The page a login link opens. It signs nobody in by itself: link previews
 * and mail scanners fetch links, so only the button (a POST) uses the link.
 */
export function loginLinkPage(input: { action: string; formToken: string; displayName: string; email: string; org: string; expiresAt: string }): string {
  return layout({
    title: 'Sign in with a login link',
    theme: 'system',
    body: html`<section class="card narrow">
<h1>Sign in</h1>
<p>This one-time link signs you in as <strong>${input.displayName}</strong> (${input.email}) in the organization <code>${input.org}</code>.</p>
<form method="post" action="${input.action}">
${formTokenField(input.formToken)}
<button type="submit">Sign in as ${input.displayName}</button>
</form>
<p class="muted">The link works once, until ${input.expiresAt.slice(0, 16).replace('T', ' ')} UTC. If you did not ask for it, close this page.</p>
</section>`,
  });
}
