import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/config.ts';
import { TrustedProxies } from '../http/client-ip.ts';
import { AppError } from '../errors/app-error.ts';
import { HOP_BY_HOP, dropConnectionListed } from '../http/forward-exchange.ts';
import { requestIdOf, sendError } from '../http/raw-response.ts';
import type { Logger } from '../log/logger.ts';
import { BodyIntake, managementBusy } from './body-intake.ts';
import type { Admission } from './body-intake.ts';
import { SOCKET_NAME, makeSocketFolder } from './socket-folder.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';
import { PEER_HEADER } from './worker-protocol.ts';

const timedOut = () => new AppError('management_timeout', 'the request took too long');
const unavailable = () => new AppError('management_unavailable', 'the management service is restarting; try again in a moment', { retryAfterSeconds: 1 });
/** Neither a timeout nor a busy socket: the details are in the log. */
const failed = () => new AppError('internal_error', 'internal error');

/** One request forwarded to the worker and not yet answered in full. */
interface Pending {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  /** The worker it went to: when that one dies, its requests fail. */
  worker: Worker;
  /** The answer's Content-Length, once its head has come (null: none, or not yet). */
  length: number | null;
  written: number;
}

/** Heap limits of the worker; the whole process stays within the gateway's memory budget. */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 96, maxYoungGenerationSizeMb: 4 };

/**
 * The main isolate's side of the management worker: starts it, forwards every
 * request for it, relays its metrics, and starts it again when it dies (the
 * hot paths keep serving meanwhile; its requests get 503).
 *
 * Requests (whole, once their body has arrived) and answers (head, data chunks, end) travel as messages, not over a
 * socket: an HTTP client's sockets in this isolate would share Node's net and
 * stream code with the hot paths' server sockets and turn its inline caches
 * megamorphic (seen with --log-ic); the worker makes them real HTTP requests
 * to its own server. Headers and bodies pass unchanged, less this hop's
 * headers, plus the request id and the client's address.
 */
export class ManagementWorker {
  private worker: Worker | null = null;
  private readonly dir = makeSocketFolder();
  /** The worker's private socket (tests fill its backlog). */
  readonly socketPath = join(this.dir, SOCKET_NAME);
  private readonly intake: BodyIntake;
  private closing = false;
  private nextRequestId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Whose X-Request-Id is taken (requestIdOf). */
  private readonly trustedProxies: TrustedProxies;
  private restartDelayMs = 250;
  private restartTimer: NodeJS.Timeout | null = null;
  private nextMetricsId = 1;
  private readonly pendingMetrics = new Map<number, (text: string) => void>();
  /** How many times the worker was started again after it died. */
  restarts = 0;

  private constructor(
    private readonly config: Config,
    private readonly invalidationChannel: string,
    private readonly logger: Logger,
    admit: Admission | undefined,
  ) {
    this.intake = new BodyIntake({ timeoutMs: config.managementBodyTimeoutMs, admit, logger });
    this.trustedProxies = new TrustedProxies(config.trustedProxies);
  }

  /**
   * Starts the worker and waits until it serves (or fails to start). `admit` checks a request
   * before its body is read (the management API's authentication, see body-intake.ts).
   */
  static async start(config: Config, invalidationChannel: string, logger: Logger, options: { admit?: Admission } = {}): Promise<ManagementWorker> {
    const m = new ManagementWorker(config, invalidationChannel, logger, options.admit);
    try {
      await m.spawn();
    } catch (err) {
      m.closing = true;
      rmSync(m.dir, { recursive: true, force: true });
      throw err;
    }
    return m;
  }

  /** The worker's thread id (tests stop it to see it come back). */
  get threadId(): number | null {
    return this.worker?.threadId ?? null;
  }

  /** Requests handed to the worker and not yet answered in full. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  /** Stops the worker as a crash would (tests). */
  async kill(): Promise<void> {
    await this.worker?.terminate();
  }

  private spawn(): Promise<void> {
    const init: WorkerInit = { config: this.config, socketPath: this.socketPath, invalidationChannel: this.invalidationChannel };
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: init, resourceLimits: WORKER_LIMITS });
    this.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          ready = true;
          this.restartDelayMs = 250;
          resolve();
        } else if (message.type === 'metrics') {
          this.pendingMetrics.get(message.id)?.(message.text);
          this.pendingMetrics.delete(message.id);
        } else {
          this.answer(message);
        }
      });
      worker.on('error', (err) => {
        if (!ready) reject(err);
        else this.logger.error({ err }, 'management worker failed');
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        for (const done of this.pendingMetrics.values()) done('');
        this.pendingMetrics.clear();
        for (const [id, p] of this.pending) if (p.worker === worker) this.fail(id, unavailable());
        if (!ready) return reject(new Error(`the management worker exited with code ${code} before it was ready`));
        if (this.closing) return;
        this.logger.error({ code, restart_in_ms: this.restartDelayMs }, 'management worker stopped; starting it again');
        this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 30_000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.closing) return;
      this.restarts++;
      this.spawn().catch((err: unknown) => {
        this.logger.error({ err }, 'management worker did not start');
        if (!this.closing) this.scheduleRestart();
      });
    }, delay);
    this.restartTimer.unref();
  }

  /**
   * Forwards one request to the worker, once its body has arrived in full (BodyIntake): a client
   * that sends slowly holds only its own socket in this thread, bounded in time, and never one of
   * the worker's connections to its server, so no number of slow clients can starve the others.
   */
  readonly handler = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = requestIdOf(req, this.trustedProxies);
    if (!this.worker || this.closing) {
      sendError(req, res, unavailable(), requestId);
      return;
    }
    this.intake.read(req, res, requestId, (body) => this.forward(req, res, requestId, body));
  };

  private forward(req: IncomingMessage, res: ServerResponse, requestId: string, body: Uint8Array | null): void {
    if (res.destroyed) return; // the client went away while its body came
    const worker = this.worker;
    if (!worker || this.closing) {
      sendError(req, res, unavailable(), requestId);
      return;
    }
    const id = this.nextRequestId++;
    this.pending.set(id, { req, res, requestId, worker, length: null, written: 0 });
    // The client went away before the answer was complete: the worker stops too.
    res.once('close', () => {
      if (this.pending.delete(id)) worker.postMessage({ type: 'abort', id } satisfies ToWorker);
    });
    const message: ToWorker = { type: 'request', id, method: req.method ?? 'GET', path: req.url ?? '/', headers: forwardedHeaders(req, requestId), body };
    // The body's own buffer (made for it by the intake) moves to the worker rather than being copied.
    worker.postMessage(message, body ? [body.buffer as ArrayBuffer] : undefined);
  }

  /** A message about a forwarded request: its answer's head, a body chunk, its end, or its failure. */
  private answer(m: Exclude<FromWorker, { type: 'ready' } | { type: 'metrics' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return; // the client has gone
    if (m.type === 'head') {
      for (let i = 0; i < m.headers.length; i += 2) if (m.headers[i]!.toLowerCase() === 'content-length') p.length = Number(m.headers[i + 1]);
      m.headers.push('X-Request-Id', p.requestId);
      if (m.statusText) p.res.writeHead(m.status, m.statusText, m.headers);
      else p.res.writeHead(m.status, m.headers);
    } else if (m.type === 'data') {
      p.res.write(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
      p.written += m.chunk.byteLength;
      // Complete as the client sees it: ended now, so that a worker that dies before its `end`
      // arrives (a terminated thread's last messages can be lost) does not cut a finished answer.
      if (p.length !== null && p.written >= p.length) {
        this.pending.delete(m.id);
        p.res.end();
      }
    } else if (m.type === 'end') {
      this.pending.delete(m.id);
      p.res.end();
    } else {
      this.logger.warn({ err: { message: m.message }, request_id: p.requestId }, 'gateway: management worker request failed');
      this.fail(m.id, m.reason === 'timeout' ? timedOut() : m.reason === 'busy' ? managementBusy() : failed());
    }
  }

  /** Ends a forwarded request with an error: the error answer, or a cut connection once the answer has begun. */
  private fail(id: number, err: AppError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (!p.res.headersSent) sendError(p.req, p.res, err, p.requestId);
    else if (p.length !== null && p.written >= p.length) p.res.end();
    else p.res.destroy();
  }

  /** The worker's metrics in the exposition format ('' when it does not answer within a second). */
  metricsText(): Promise<string> {
    const worker = this.worker;
    if (!worker) return Promise.resolve('');
    const id = this.nextMetricsId++;
    return new Promise<string>((resolve) => {
      const timer = setTimeout(() => {
        this.pendingMetrics.delete(id);
        resolve('');
      }, 1000);
      this.pendingMetrics.set(id, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      worker.postMessage({ type: 'metrics', id } satisfies ToWorker);
    });
  }

  /** Lets the worker finish what it is doing, then stops it. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (worker) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'close' } satisfies ToWorker);
      const timer = setTimeout(() => void worker.terminate(), this.config.shutdownTimeoutMs + 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The request's headers as the client sent them, less those of this hop, plus
 * the request id and the client's address. A client's own copy of the
 * address header is dropped, as every X-Trackgate-* header from a client is.
 */
function forwardedHeaders(req: IncomingMessage, requestId: string): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      connection = connection === undefined ? raw[i + 1]! : `${connection}, ${raw[i + 1]!}`;
      continue;
    }
    // Expect: Node already answered 100-continue on the client's connection.
    if (HOP_BY_HOP.has(lower) || lower === PEER_HEADER || lower === 'x-request-id' || lower === 'expect') continue;
    out.push(name, raw[i + 1]!);
  }
  if (connection !== undefined) dropConnectionListed(out, connection);
  out.push('x-request-id', requestId, PEER_HEADER, req.socket.remoteAddress ?? '');
  return out;
}

/** A name for the cache-invalidation channel between the isolates of one gateway instance. */
export function invalidationChannelName(): string {
  return `trackgate-invalidate-${randomUUID()}`;
}
