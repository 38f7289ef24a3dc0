/**
 * A minimal browser for trackgate's own origin: a cookie jar, no redirects
 * followed, form posts. (The IdP side has its own jar in drive.ts.)
 */
export class Browser {
  readonly jar = new Map<string, string>();
  /** Cookie paths (RFC 6265 path-match); cookies set by tests directly default to "/". */
  readonly paths = new Map<string, string>();

  constructor(readonly base: string) {}

  cookieHeader(path = '/'): string {
    return [...this.jar]
      .filter(([k]) => {
        const p = this.paths.get(k) ?? '/';
        return p === '/' || path === p || path.startsWith(p.endsWith('/') ? p : p + '/') || path.startsWith(p + '?');
      })
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
  }

  private remember(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0/i.test(line) || value === '') this.jar.delete(name);
      else {
        this.jar.set(name, value);
        this.paths.set(name, /;\s*path=([^;]*)/i.exec(line)?.[1] ?? '/');
      }
    }
  }

  async request(method: string, pathOrUrl: string, options: { form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Headers; text: string; location: string | null; setCookies: string[] }> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : this.base + pathOrUrl;
    const headers: Record<string, string> = { accept: 'text/html', ...options.headers };
    const cookie = this.cookieHeader(new URL(url).pathname);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (options.form) {
      body = new URLSearchParams(options.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.remember(res);
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, location: res.headers.get('location'), setCookies: res.headers.getSetCookie() };
  }

  get(path: string, headers?: Record<string, string>) {
    return this.request('GET', path, headers ? { headers } : {});
  }

  post(path: string, form: Record<string, string>, headers?: Record<string, string>) {
    return this.request('POST', path, { form, ...(headers ? { headers } : {}) });
  }
}
