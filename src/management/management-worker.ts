import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/config.ts';
import { AppError } from '../http/errors.ts';
import { HOP_BY_HOP, ProxyHandler, dropConnectionListed } from '../http/forward-exchange.ts';
import type { ForwardTarget } from '../http/forward-exchange.ts';
import { hasRequestBody, requestIdOf } from '../http/raw-response.ts';
import type { Logger } from '../log/logger.ts';
import { PEER_HEADER } from './worker-protocol.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const MANAGEMENT: ForwardTarget = {
  timeout: () => new AppError(504, 'management_timeout', 'the request took too long'),
  unavailable: () => new AppError(503, 'management_unavailable', 'the management service is restarting; try again in a moment', { headers: { 'Retry-After': '1' } }),
  name: 'management worker',
};

/** Heap limits of the worker; the whole process stays within the gateway's memory budget. */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 96, maxYoungGenerationSizeMb: 4 };

/**
 * The main isolate's side of the management worker: starts it, forwards every
 * request for it (over a private unix socket, through undici like the proxy,
 * headers and bodies passed on as they are plus the client's address), relays
 * its metrics, and starts it again when it dies (the hot paths keep serving
 * meanwhile; its requests get 503).
 */
export class ManagementWorker {
  private worker: Worker | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'trackgate-mgmt-'));
  private readonly socketPath = join(this.dir, 'management.sock');
  private readonly pool: Pool;
  private closing = false;
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
  ) {
    this.pool = new Pool('http://localhost', {
      socketPath: this.socketPath,
      connections: 64,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
      connectTimeout: 5_000,
    });
  }

  /** Starts the worker and waits until it serves (or fails to start). */
  static async start(config: Config, invalidationChannel: string, logger: Logger): Promise<ManagementWorker> {
    const m = new ManagementWorker(config, invalidationChannel, logger);
    try {
      await m.spawn();
    } catch (err) {
      m.closing = true;
      await m.pool.close();
      rmSync(m.dir, { recursive: true, force: true });
      throw err;
    }
    return m;
  }

  /** The worker's thread id (tests stop it to see it come back). */
  get threadId(): number | null {
    return this.worker?.threadId ?? null;
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

  /** Forwards one request to the worker. */
  readonly handler = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = requestIdOf(req);
    const h = new ProxyHandler(req, res, requestId, this.logger, MANAGEMENT);
    this.pool.dispatch(
      {
        path: req.url ?? '/',
        method: req.method ?? 'GET',
        headers: forwardedHeaders(req, requestId),
        body: hasRequestBody(req) ? req : null,
        idempotent: false,
        blocking: false,
      },
      h as unknown as Dispatcher.DispatchHandler,
    );
  };

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
    await this.pool.close();
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
