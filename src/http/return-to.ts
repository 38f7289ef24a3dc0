/**
 * `return_to` accepts same-origin relative paths only: "/x", not "//x", not
 * "/\x", not absolute URLs, no control characters or backslashes. Anything
 * else gives the fallback. Used by the login pages and by forward auth.
 */
export function safeReturnTo<F extends string | null>(value: unknown, fallback: F): string | F {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2000) return fallback;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return fallback;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return fallback;
  try {
    const base = new URL('http://trackgate.invalid');
    const u = new URL(value, base);
    if (u.origin !== base.origin) return fallback;
    return u.pathname + u.search + u.hash;
  } catch {
    return fallback;
  }
}
