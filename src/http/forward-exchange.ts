import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors as undiciErrors } from 'undici';
import { errors } from '../errors/app-error.ts';
import type { AppError } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';
import { httpStatusOf } from './errors.ts';
import { sendError } from './raw-response.ts';

/** Request headers that describe one hop, not the request; RFC 9110 §7.6.1 plus the usual suspects. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const EXCHANGE = Symbol('trackgate.exchange');
/** Up to this size the first body chunk is sent in the same write as the response head (see onData). */
const SINGLE_WRITE_LIMIT = 8 * 1024;
type ExchangeResponse = ServerResponse & { [EXCHANGE]?: ProxyHandler };

// Listeners shared by every exchange (an emitter calls them with itself as `this`): per-request
// closures, and the name each gets under tsx's keep-names transform, showed in the proxy's profile.
function onResponseClose(this: ServerResponse): void {
  (this as ExchangeResponse)[EXCHANGE]?.clientClosed();
}

function onResponseDrain(this: ServerResponse): void {
  (this as ExchangeResponse)[EXCHANGE]?.resume?.();
}

/** How a failed exchange is told to the client and the log. */
export interface ForwardTarget {
  timeout: () => AppError;
  unavailable: () => AppError;
  /** Names the target in log messages. */
  name: string;
}

/**
 * One proxied exchange. Response headers are written when the upstream's
 * arrive; body chunks are written as they come, pausing the upstream while
 * the client's socket is full.
 *
 * Written against undici's original handler interface (onConnect, onHeaders,
 * onData, onComplete, onError), which undici 7 calls directly; a handler with
 * the newer controller interface is wrapped per request in an adapter that
 * also parses every response header into an object nobody here reads. On
 * this path that adapter was measured at a few percent of the proxy's
 * throughput.
 */
export class ProxyHandler {
  private abort: ((err?: Error) => void) | null = null;
  resume: (() => void) | null = null;
  private clientGone = false;
  private done = false;
  /** The response head is written but not yet sent: Node sends it with the first body chunk. */
  private headPending = false;

  /** Also listens for the client going away (through the response, so that no closure is made per request). */
  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly logger: Logger | null,
    private readonly target: ForwardTarget,
  ) {
    (res as ExchangeResponse)[EXCHANGE] = this;
    res.on('close', onResponseClose);
  }

  clientClosed(): void {
    if (this.done) return;
    this.clientGone = true;
    this.abort?.(new Error('client closed the connection'));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.clientGone) abort(new Error('client closed the connection'));
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx: Node already spoke to the client.
    this.resume = resume;
    const out = forwardedResponseHeaders(raw);
    out.push('X-Request-Id', this.requestId);
    if (statusText) this.res.writeHead(statusCode, statusText, out);
    else this.res.writeHead(statusCode, out);
    this.headPending = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    let ok: boolean;
    if (this.headPending && chunk.length <= SINGLE_WRITE_LIMIT) {
      // Given a string, Node joins it to the response head and sends both in one plain write;
      // given a Buffer, it gathers the two into a writev, which costs more per response. latin1
      // maps bytes to characters one to one, so the body goes out unchanged.
      const socket = this.res.chunkedEncoding ? null : this.res.socket;
      const wasCorked = socket !== null && socket.writableCorked > 0;
      ok = this.res.write(chunk.toString('latin1'), 'latin1');
      // Node corks the socket on a response's first write and uncorks it on the next tick, so the
      // empty write of res.end() joined this one in a writev completed asynchronously. Uncorked
      // at once, head and body leave in one synchronous write and end() has nothing left to send
      // (measured: ~1 % less CPU per proxied request). A chunked answer stays corked, so that its
      // terminating chunk still joins the same writev.
      if (!wasCorked && socket !== null && socket.writableCorked > 0) socket.uncork();
    } else {
      ok = this.res.write(chunk);
    }
    this.headPending = false;
    if (ok) return true;
    this.res.once('drain', onResponseDrain);
    return false;
  }

  onComplete(): void {
    this.done = true;
    this.res.end();
  }

  onError(err: Error): void {
    this.done = true;
    if (this.clientGone) return;
    const code = (err as { code?: string }).code;
    if (this.res.headersSent) {
      // Mid-body: the only honest signal left is to cut the connection.
      this.logger?.warn({ err: { code, message: err.message }, requestId: this.requestId }, `gateway: ${this.target.name} failed while sending a response`);
      this.res.destroy();
      return;
    }
    let status: AppError;
    if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
      status = this.target.timeout();
    } else if (err instanceof undiciErrors.RequestContentLengthMismatchError) {
      status = errors.badRequest('request body does not match its Content-Length');
    } else if (this.req.errored || (this.req.destroyed && !this.req.complete)) {
      status = errors.badRequest('the request body was cut off');
    } else {
      status = this.target.unavailable();
    }
    this.logger?.warn({ err: { code, message: err.message }, requestId: this.requestId, status: httpStatusOf(status) }, `gateway: ${this.target.name} request failed`);
    sendError(this.req, this.res, status, this.requestId);
  }
}

/**
 * A response's headers as they go on to the client: a flat [name, value, ...]
 * list from the raw headers (names keep their case, repeated headers stay
 * repeated), less those of this hop and the answerer's X-Request-Id (the
 * caller adds the request's own).
 */
export function forwardedResponseHeaders(raw: Buffer[]): string[] {
  const out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      const v = raw[i + 1]!.toString('latin1');
      connection = connection === undefined ? v : `${connection}, ${v}`;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || lower === 'x-request-id') continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (connection !== undefined) dropConnectionListed(out, connection);
  return out;
}

const NOTHING_LISTED = /^\s*(?:keep-alive|close)?\s*$/i;

/**
 * Removes from a flat [name, value, ...] list the headers that a Connection
 * header names: they describe this hop only (RFC 9110 §7.6.1). The usual
 * "keep-alive" / "close" name nothing to remove.
 */
export function dropConnectionListed(out: string[], connection: string): void {
  // The usual case, answered without allocating: it ran on every proxied response.
  if (NOTHING_LISTED.test(connection)) return;
  const listed = new Set(connection.toLowerCase().split(',').map((s) => s.trim()));
  listed.delete('keep-alive');
  listed.delete('close');
  listed.delete('');
  if (listed.size === 0) return;
  for (let i = out.length - 2; i >= 0; i -= 2) if (listed.has(out[i]!.toLowerCase())) out.splice(i, 2);
}
