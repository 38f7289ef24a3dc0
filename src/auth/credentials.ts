import type { IncomingMessage } from 'node:http';

/** What the Authorization header carried, before anything is looked up. */
export type Credentials =
  | { kind: 'none' }
  | { kind: 'api_key'; key: string }
  | { kind: 'bearer_token'; token: string }
  | { kind: 'invalid'; message: string };

const KEY_LIKE = /^[a-z]{3}-/;

/** Node keeps only the first of repeated Authorization headers; the raw list shows them all. */
function countAuthorizationHeaders(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization') n++;
  }
  return n;
}

export function readCredentials(req: IncomingMessage): Credentials {
  const header = req.headers.authorization;
  if (header === undefined) return { kind: 'none' };
  if (countAuthorizationHeaders(req) > 1) return { kind: 'invalid', message: 'more than one Authorization header' };
  const space = header.indexOf(' ');
  if (space <= 0) return { kind: 'invalid', message: 'malformed Authorization header: expected "<scheme> <credentials>"' };
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (value === '') return { kind: 'invalid', message: `empty ${scheme} credentials` };
  if (scheme === 'basic') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) {
      return { kind: 'invalid', message: 'malformed Basic credentials: not valid base64' };
    }
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) return { kind: 'invalid', message: 'malformed Basic credentials: expected "api:<key>"' };
    // The tracking client sends user "api"; older clients and tools differ, so
    // the key is the password whatever the user, or the user when the password is empty.
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const key = password !== '' ? password : user;
    if (key === '') return { kind: 'invalid', message: 'malformed Basic credentials: no key' };
    return { kind: 'api_key', key };
  }
  if (scheme === 'bearer') {
    if (KEY_LIKE.test(value)) return { kind: 'api_key', key: value };
    return { kind: 'bearer_token', token: value };
  }
  return { kind: 'invalid', message: `unsupported Authorization scheme "${header.slice(0, Math.min(space, 20))}": use Basic or Bearer` };
}
