/**
 * Drives an oidc-provider login non-interactively over HTTP, as a browser
 * would: follows the IdP's redirects with the IdP's cookies, answers the
 * devInteractions login prompt (POST login=<sub>) and consent prompt, and
 * stops at the answer meant for the relying party.
 */

export type IdpAnswer =
  /** response_mode=form_post: the auto-submitting form the browser would POST to the callback. */
  | { kind: 'form_post'; action: string; fields: Record<string, string> }
  /** fragment (#id_token=...) or query (?code=...) redirect to the callback. */
  | { kind: 'redirect'; location: string };

function decodeHtml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export function parseFormPost(html: string): { action: string; fields: Record<string, string> } | null {
  const form = /<form[^>]*method="post"[^>]*action="([^"]*)"/i.exec(html);
  if (!form?.[1]) return null;
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"\s*\/?>/g)) {
    fields[decodeHtml(m[1] ?? '')] = decodeHtml(m[2] ?? '');
  }
  return { action: decodeHtml(form[1]), fields };
}

export async function driveIdpLogin(authorizationUrl: string, login: string, options: { maxSteps?: number } = {}): Promise<IdpAnswer> {
  const idpOrigin = new URL(authorizationUrl).origin;
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const remember = (res: Response) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  };
  let url = authorizationUrl;
  let method: 'GET' | 'POST' = 'GET';
  let body: string | undefined;
  for (let step = 0; step < (options.maxSteps ?? 12); step++) {
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { cookie: cookieHeader(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(body ? { body } : {}),
    });
    remember(res);
    method = 'GET';
    body = undefined;
    if (res.status >= 300 && res.status < 400) {
      const location = new URL(res.headers.get('location')!, url).href;
      await res.body?.cancel();
      if (new URL(location).origin !== idpOrigin || !location.includes('/interaction/') && !location.includes('/auth')) {
        return { kind: 'redirect', location };
      }
      url = location;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`IdP answered ${res.status} at ${url}: ${html.slice(0, 500)}`);
    const form = parseFormPost(html);
    if (form && !form.action.includes('/interaction/')) return { kind: 'form_post', ...form };
    if (url.includes('/interaction/')) {
      const isLogin = /name="login"/.test(html) || /name="prompt" value="login"/.test(html);
      method = 'POST';
      body = isLogin ? new URLSearchParams({ prompt: 'login', login, password: 'x' }).toString() : new URLSearchParams({ prompt: 'consent' }).toString();
      continue;
    }
    throw new Error(`unexpected IdP page at ${url}: ${html.slice(0, 300)}`);
  }
  throw new Error('IdP login did not finish');
}
