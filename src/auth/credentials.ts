import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** What the Authorization header carried, before anything is looked up. */
export type Credentials =
  | { kind: 'none' }
  | ApiKeyCredentials
  | { kind: 'bearer_token'; token: string }
  | { kind: 'invalid'; message: string };

/** An API key as sent; `hash` is filled in by the key verifier the first time it is needed. */
export interface ApiKeyCredentials {
  kind: 'api_key';
  key: string;
  hash?: string;
}

/**
 * The last API key a connection sent, by its Authorization header: a client on
 * a keep-alive connection sends the same header with every request, and on the
 * hot paths decoding and hashing it again was the largest part of
 * authentication. Only the parsing and the hash are remembered; every request
 * still goes through the key cache with its expiry and revocation checks.
 */
const LAST_KEY = Symbol('trackgate.lastKey');
type RememberingSocket = Socket & { [LAST_KEY]?: { header: string; creds: ApiKeyCredentials } };

/**
 * The prefix of the access tokens workload federation issues (src/federation): `tga-` + 40 characters,
 * the shape of an API key (src/keys/key-format.ts), so that both are read here as one kind of credential
 * and verified on the same path.
 */
export const ACCESS_TOKEN_PREFIX = 'tga';

/** Whether a presented key-shaped credential is a federation access token rather than an API key. */
export function isAccessToken(key: string): boolean {
  return key.startsWith('tga-');
}

const NONE: Credentials = Object.freeze({ kind: 'none' });
const KEY_LIKE = /^[a-z]{3}-/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The Authorization header read from the raw header list. On the hot paths
 * this is the only header needed, and reading `req.headers` would make Node
 * build the whole header object; the raw list also shows repeated
 * Authorization headers, which `req.headers` silently folds into the first.
 */
export function readCredentials(req: IncomingMessage): Credentials {
  const raw = req.rawHeaders;
  let header: string | undefined;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && (name === 'authorization' || name === 'Authorization' || name.toLowerCase() === 'authorization')) {
      if (count++ === 0) header = raw[i + 1]!;
    }
  }
  if (header === undefined) return NONE;
  if (count > 1) return { kind: 'invalid', message: 'more than one Authorization header' };
  const socket = req.socket as RememberingSocket | null;
  const last = socket?.[LAST_KEY];
  if (last !== undefined && last.header === header) return last.creds;
  const creds = parseAuthorization(header);
  if (creds.kind === 'api_key' && socket) socket[LAST_KEY] = { header, creds };
  return creds;
}

export function parseAuthorization(header: string): Credentials {
  const space = header.indexOf(' ');
  if (space <= 0) return { kind: 'invalid', message: 'malformed Authorization header: expected "<scheme> <credentials>"' };
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (value === '') return { kind: 'invalid', message: `empty ${scheme} credentials` };
  if (scheme === 'basic') {
    if (value.length % 4 !== 0 || !BASE64.test(value)) {
      return { kind: 'invalid', message: 'malformed Basic credentials: not valid base64' };
    }
    // atob: the input is checked above, and a key is ASCII (a user name that is not decodes to other
    // characters and is ignored, or fails the key's shape check).
    const decoded = atob(value);
    const colon = decoded.indexOf(':');
    if (colon === -1) return { kind: 'invalid', message: 'malformed Basic credentials: expected "api:<key>"' };
    // The tracking client sends user "api"; older clients and tools differ, so
    // the key is the password whatever the user, or the user when the password is empty.
    const key = colon === decoded.length - 1 ? decoded.slice(0, colon) : decoded.slice(colon + 1);
    if (key === '') return { kind: 'invalid', message: 'malformed Basic credentials: no key' };
    return { kind: 'api_key', key };
  }
  if (scheme === 'bearer') {
    if (KEY_LIKE.test(value)) return { kind: 'api_key', key: value };
    return { kind: 'bearer_token', token: value };
  }
  return { kind: 'invalid', message: `unsupported Authorization scheme "${header.slice(0, Math.min(space, 20))}": use Basic or Bearer` };
}
