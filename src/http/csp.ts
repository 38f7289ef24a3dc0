/**
 * The one Content-Security-Policy of every page and answer of the Express side: nothing inline, no
 * plugin, no framing, only trackgate's own scripts, styles and connections. Pages differ only in where
 * their forms may go (`formAction`): the sign-in form posts to /login, which redirects to the IdP, and
 * browsers apply form-action to that redirect, so the login pages allow the IdPs' schemes too.
 */
export function contentSecurityPolicy(formAction: readonly string[] = ["'self'"]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    `form-action ${formAction.join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}
