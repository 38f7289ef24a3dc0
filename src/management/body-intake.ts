import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../auth/authenticator.ts';
import { readCredentials } from '../auth/credentials.ts';
import { isScimPath } from '../http/errors.ts';
import { presentedToken, scimTokenRefused } from '../scim/scim-tokens.service.ts';
import type { ScimTokensService } from '../scim/scim-tokens.service.ts';
import type { TrustedProxies } from '../http/client-ip.ts';
import { AppError, errors } from '../errors/app-error.ts';
import { hasRequestBody, rawHeader, sendError } from '../http/raw-response.ts';
import { pathOf } from '../http/server.ts';
import { SECRET_SCANNING_PREFIX, SIGNATURE_HEADERS } from '../secret-scanning/signature-headers.ts';
import type { Logger } from '../log/logger.ts';

/**
 * The management API takes small JSON and form bodies (64 KB in Express); more than this is never
 * read. Held in the main thread until complete, so this also bounds what one request costs there.
 */
export const MAX_BODY_BYTES = 1024 * 1024;
/** All management bodies being received at once: past this, new ones get 503 (memory stays bounded whatever the number of clients). */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export const managementBusy = () =>
  new AppError('management_busy', 'the management service is busy; try again in a moment', { retryAfterSeconds: 1 });
const tooLarge = () => new AppError('payload_too_large', `request bodies of the management API are limited to ${MAX_BODY_BYTES / 1024 / 1024} MB`);
const tooSlow = (ms: number) => new AppError('request_timeout', `the request body did not arrive within ${ms / 1000} s`);

/** Checks a request before its body is read: an error to answer instead, or null to go on. */
export type Admission = (req: IncomingMessage) => Promise<AppError | null>;

/**
 * The management API (/gateway/v1/…) has no route that takes a body without
 * credentials: a request with a body is authenticated before a byte of it is
 * read, so a client without a valid key or session cannot make trackgate wait
 * for, or hold, anything. (The worker authenticates it again, with CSRF; the
 * pages' and the login's bodies, an IdP's form_post among them, are bounded in
 * size and time only.)
 */
export function authenticateManagementBodies(authenticator: Authenticator, trustedProxies: TrustedProxies): Admission {
  return async (req) => {
    const path = pathOf(req.url);
    if (!path.startsWith('/gateway/v1/')) return null;
    // A secret scanner's report carries no credential but a signature over its body (src/secret-scanning):
    // admitted when it names its signing key and signature; the worker verifies them before anything else.
    if (path.startsWith(SECRET_SCANNING_PREFIX)) {
      return rawHeader(req, SIGNATURE_HEADERS.keyId) !== undefined && rawHeader(req, SIGNATURE_HEADERS.signature) !== undefined
        ? null
        : errors.unauthenticated('a secret-scanning report must be signed: send the Github-Public-Key-Identifier and Github-Public-Key-Signature headers', 'invalid_signature');
    }
    const outcome = await authenticator.authenticate(req, trustedProxies.clientIp(req), { allowSession: true });
    if (outcome.ok) return null;
    return outcome.anonymous ? errors.unauthenticated() : outcome.error;
  };
}

/**
 * The same for SCIM (/scim/…): a body is read only for a request whose SCIM token is valid, so an unknown
 * client cannot make trackgate receive a megabyte. The refusal is SCIM's 401 (writeErrorJson answers
 * every error under /scim in RFC 7644's shape). The worker's router authenticates the request again.
 */
export function authenticateScimBodies(tokens: Pick<ScimTokensService, 'authenticate'>, trustedProxies: TrustedProxies): Admission {
  return async (req) => {
    if (!isScimPath(pathOf(req.url))) return null;
    const creds = readCredentials(req);
    const token = presentedToken(creds);
    if (token === null) return scimTokenRefused(false);
    return (await tokens.authenticate(token, { ip: trustedProxies.clientIp(req), requestId: '' })) ? null : scimTokenRefused(true);
  };
}

/** Several admissions, each for its own paths: the first refusal is the answer. */
export function admitAll(...admissions: Admission[]): Admission {
  return async (req) => {
    for (const admit of admissions) {
      const refused = await admit(req);
      if (refused) return refused;
    }
    return null;
  };
}

/**
 * How a request for the management plane (API, pages, login) arrives, in the
 * main thread: its body must come within `timeoutMs` of its head (408 and the
 * connection closed otherwise), at most MAX_BODY_BYTES, after its admission.
 * Hot paths and the proxy never pass here: a proxied upload has no such limit.
 */
export class BodyIntake {
  private buffered = 0;

  constructor(private readonly options: { timeoutMs: number; admit?: Admission; logger: Logger }) {}

  /**
   * For the management worker: reads the whole body, then `done(body)` (null without one). A slow
   * sender holds only its socket here, never one of the worker's connections; every refusal is
   * answered here and `done` is not called.
   */
  read(req: IncomingMessage, res: ServerResponse, requestId: string, done: (body: Uint8Array | null) => void): void {
    if (!hasRequestBody(req)) return done(null);
    this.receive(req, res, requestId, true, (chunks, bytes) => {
      const body = new Uint8Array(bytes);
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.length;
      }
      done(body);
    });
  }

  /** For the inline application, which reads the body itself: the admission, then `next()`; the deadline still covers the body. */
  guard(req: IncomingMessage, res: ServerResponse, requestId: string, next: () => void): void {
    if (!hasRequestBody(req)) return next();
    this.receive(req, res, requestId, false, () => {}, next);
  }

  private receive(req: IncomingMessage, res: ServerResponse, requestId: string, hold: boolean, done: (chunks: Buffer[], bytes: number) => void, next?: () => void): void {
    const announced = rawHeader(req, 'content-length');
    const length = announced === undefined ? null : Number(announced);
    if (length !== null && length > MAX_BODY_BYTES) return sendError(req, res, tooLarge(), requestId);
    let reserved = 0;
    let finished = false;
    const chunks: Buffer[] = [];
    let bytes = 0;
    const stop = (err: AppError | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      this.buffered -= reserved;
      reserved = 0;
      if (err) {
        sendError(req, res, err, requestId);
        // The rest of the body is not waited for: the answer says Connection: close, and the socket goes with it.
        res.once('finish', () => req.socket.destroy());
      }
    };
    // The deadline counts from the head's arrival and covers the admission too.
    const timer = setTimeout(() => stop(tooSlow(this.options.timeoutMs)), this.options.timeoutMs);
    res.once('close', () => stop(null));
    const start = () => {
      if (finished) return;
      if (next) {
        req.once('end', () => stop(null));
        return next();
      }
      if (hold && length !== null) {
        if (this.buffered + length > MAX_BUFFERED_BYTES) return stop(managementBusy());
        this.buffered += length;
        reserved = length;
      }
      req.on('data', (chunk: Buffer) => {
        if (finished) return;
        bytes += chunk.length;
        if (bytes > MAX_BODY_BYTES) return stop(tooLarge());
        if (bytes > reserved) {
          // A chunked body: reserved as it comes.
          if (this.buffered + (bytes - reserved) > MAX_BUFFERED_BYTES) return stop(managementBusy());
          this.buffered += bytes - reserved;
          reserved = bytes;
        }
        chunks.push(chunk);
      });
      req.once('end', () => {
        if (finished) return;
        stop(null);
        done(chunks, bytes);
      });
    };
    if (!this.options.admit) return start();
    this.options.admit(req).then(
      (refused) => (refused ? stop(refused) : start()),
      (err: unknown) => {
        if (!(err instanceof AppError)) this.options.logger.error({ err, request_id: requestId }, 'management: authenticating a request failed');
        stop(err instanceof AppError ? err : new AppError('internal_error', 'internal error'));
      },
    );
  }
}
