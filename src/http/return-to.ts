const MAX_LENGTH = 2000;
const BASE = 'http://trackgate.invalid';
/** Where a person goes when where they asked to go is missing or unsafe: their settings page. */
export const DEFAULT_RETURN_TO = '/settings';
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f\\]/;

/**
 * `return_to` accepts same-origin relative paths only: "/x", not "//x", not
 * "/\x", not absolute URLs, no control characters or backslashes.
 * Anything else gives the fallback. Every redirect built from what a client
 * sent (the login page, forward auth, the proxy, the end of an SSO login)
 * goes through this one function.
 *
 * The input is parsed as a browser would (WHATWG URL: dot segments, `%2e`,
 * tabs and newlines removed), and the checks apply to the *result*, which is
 * what ends up in a Location header: `/.//evil.com` parses to the path
 * `//evil.com`, which a browser reads as another host. The result must also
 * parse back to itself, so that a second pass (forward auth hands it on to
 * /login, which checks it again) cannot turn it into something else.
 */
export function safeReturnTo(value: unknown): string;
export function safeReturnTo<F extends string | null>(value: unknown, fallback: F): string | F;
export function safeReturnTo(value: unknown, fallback: string | null = DEFAULT_RETURN_TO): string | null {
  if (typeof value !== 'string' || !isSafeShape(value)) return fallback;
  const result = normalize(value);
  if (result === null || !isSafeShape(result) || normalize(result) !== result) return fallback;
  return result;
}

/** A same-origin path as the browser resolves it, or null when it resolves elsewhere or does not parse. */
function normalize(value: string): string | null {
  try {
    const u = new URL(value, BASE);
    if (u.origin !== BASE) return null;
    return u.pathname + u.search + u.hash;
  } catch {
    return null;
  }
}

/** A path that starts with one slash, is not protocol-relative (`//`, `/\`), and has no control characters or backslashes. */
function isSafeShape(s: string): boolean {
  return s.length > 0 && s.length <= MAX_LENGTH && s[0] === '/' && s[1] !== '/' && s[1] !== '\\' && !UNSAFE_CHARS.test(s);
}

/** `/login`, with `return_to` when `target` is a safe same-origin path (the one way a login redirect is built). */
export function loginPath(target: unknown): string {
  const returnTo = safeReturnTo(target, null);
  return returnTo === null ? '/login' : `/login?return_to=${encodeURIComponent(returnTo)}`;
}
