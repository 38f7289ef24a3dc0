import { rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { Pool, errors as undiciErrors } from 'undici';
import { closeCore, createCore, createWiredSso } from '../core.ts';
import { ThreadInvalidationTransport } from '../auth/thread-invalidation.ts';
import { setForwardedPeer } from '../http/client-ip.ts';
import { forwardedResponseHeaders } from '../http/forward-exchange.ts';
import { createHttpServer } from '../http/server.ts';
import { createLogger } from '../log/logger.ts';
import { loggablePath } from '../log/loggable-path.ts';
import { Metrics } from '../metrics/metrics.ts';
import { createManagementApp } from './management-app.ts';
import { removeStaleSocketFolders } from './socket-folder.ts';
import { PEER_HEADER, chunkMessage } from './worker-protocol.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

/**
 * The management worker: the Express application (management API, pages,
 * SSO) in an isolate of its own, so that the main isolate's hot paths
 * (/auth/verify, the proxy) never see an Express request or response object.
 * Once those have passed through Node's HTTP code, V8's inline caches there
 * turn megamorphic for good and every later /auth/verify pays for it
 * (measured: 0.80 of a bare server before, 0.67 after; see BENCHMARKS.md).
 */
if (!parentPort) throw new Error('the management worker runs in a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;
const { config } = init;

const logger = createLogger({ level: config.logLevel, file: config.logFile, name: 'trackgate-management' });
const core = await createCore(config, { logger, migrate: false, instanceId: init.invalidationChannel });
core.invalidator.attach(new ThreadInvalidationTransport(init.invalidationChannel));
const sso = createWiredSso(core, { servesSso: true });
const metrics = new Metrics({}, { process: false, requests: true });
const management = createManagementApp(core, sso, metrics);
core.lastUsed.start();

// Its only client is this isolate's pool below, which sends each request whole at once (the main
// thread waits for the body): the timeouts are a backstop.
const server = createHttpServer(
  (req: IncomingMessage, res: ServerResponse) => {
    takePeer(req);
    management.app(req, res);
  },
  { headersTimeoutMs: 30_000, requestTimeoutMs: 60_000 },
);

/** Moves the client's address from the header the main isolate set onto the request, before anything reads the headers. */
function takePeer(req: IncomingMessage): void {
  const raw = req.rawHeaders;
  let peer = '';
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i]!.toLowerCase() === PEER_HEADER) {
      peer = raw[i + 1]!;
      raw.splice(i, 2);
    }
  }
  setForwardedPeer(req, peer);
}

const send = (message: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

/**
 * Requests arrive from the main isolate as messages, and this isolate makes
 * them real HTTP requests to its own server (undici over the private socket).
 * So the HTTP client's sockets and streams live here, where they cannot
 * disturb the main isolate's hot paths: there, Node's net and stream code
 * only ever sees the server's own sockets (a client socket in the same
 * isolate turned its inline caches megamorphic; see BENCHMARKS.md).
 */
const client = new Pool('http://localhost', {
  socketPath: init.socketPath,
  connections: 64,
  pipelining: 1,
  keepAliveTimeout: 30_000,
  headersTimeout: 300_000,
  bodyTimeout: 300_000,
  connectTimeout: 5_000,
});

interface Exchange {
  abort: ((err?: Error) => void) | null;
  done: boolean;
  /** Connection attempts refused so far (see BUSY_RETRIES). */
  refused: number;
  retry: NodeJS.Timeout | null;
}
const exchanges = new Map<number, Exchange>();

/**
 * Under a burst, connecting to the own socket can fail with EAGAIN: its listen backlog is full
 * while this thread is busy and has not accepted yet. Nothing was sent, so the request is tried
 * again (after 5, 10, 20… ms, at most 200 ms apart, ~10 s in all) and answered 503 "busy" only
 * when the socket still refuses; never "restarting", which is said only of a worker that is gone.
 */
const BUSY_RETRIES = 55;
const busyDelay = (n: number) => Math.min(5 * 2 ** n, 200);

function refusedConnection(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? ((err as { cause?: NodeJS.ErrnoException }).cause?.code);
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
}

function forward(m: Extract<ToWorker, { type: 'request' }>): void {
  const ex: Exchange = { abort: null, done: false, refused: 0, retry: null };
  exchanges.set(m.id, ex);
  dispatch(m, ex);
}

function dispatch(m: Extract<ToWorker, { type: 'request' }>, ex: Exchange): void {
  const finish = () => {
    ex.done = true;
    exchanges.delete(m.id);
  };
  let answered = false;
  const handler = {
    onConnect(abort: (err?: Error) => void): void {
      ex.abort = abort;
      // Aborted by the main isolate before undici got this far.
      if (ex.done) abort(new Error('client closed the connection'));
    },
    onHeaders(status: number, raw: Buffer[], _resume: () => void, statusText: string): boolean {
      answered = true;
      if (status < 200) return true;
      send({ type: 'head', id: m.id, status, statusText, headers: forwardedResponseHeaders(raw) });
      return true;
    },
    onData(chunk: Buffer): boolean {
      const c = chunkMessage(chunk);
      send({ type: 'data', id: m.id, chunk: c.chunk }, c.transfer);
      return true;
    },
    onComplete(): void {
      finish();
      send({ type: 'end', id: m.id });
    },
    onError(err: Error): void {
      if (!ex.done && !answered && refusedConnection(err)) {
        if (ex.refused < BUSY_RETRIES) {
          if (ex.refused === 0) logger.debug({ code: 'EAGAIN', path: loggablePath(m.path) }, 'management worker: its own socket refused a connection (backlog full); retrying');
          ex.retry = setTimeout(() => {
            ex.retry = null;
            if (!ex.done) dispatch(m, ex);
          }, busyDelay(ex.refused++));
          return;
        }
        finish();
        send({ type: 'error', id: m.id, message: err.message, reason: 'busy' });
        return;
      }
      finish();
      const timeout = err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError;
      send({ type: 'error', id: m.id, message: err.message, reason: timeout ? 'timeout' : 'failed' });
    },
  };
  // The original handler interface, as in src/http/forward-exchange.ts. The body is complete: a retry can send it again.
  client.dispatch({ path: m.path, method: m.method, headers: m.headers, body: m.body, idempotent: false, blocking: false }, handler);
}

/**
 * Requests that arrive before this isolate's server listens, dispatched once it does (null from then on).
 * A worker started again after a crash is sent requests as soon as it exists, and its listener below is
 * there before the server: dispatched at once, they would meet the dead worker's socket file (refused)
 * and be answered 500.
 */
let early: Array<Extract<ToWorker, { type: 'request' }>> | null = [];

port.on('message', (message: ToWorker) => {
  if (message.type === 'request') {
    if (early) early.push(message);
    else forward(message);
  } else if (message.type === 'abort') {
    if (early) early = early.filter((m) => m.id !== message.id);
    const ex = exchanges.get(message.id);
    if (ex) {
      exchanges.delete(message.id);
      ex.done = true;
      if (ex.retry) clearTimeout(ex.retry);
      ex.abort?.(new Error('client closed the connection'));
    }
  } else if (message.type === 'metrics') {
    metrics.text().then(
      (text) => send({ type: 'metrics', id: message.id, text }),
      () => send({ type: 'metrics', id: message.id, text: '' }),
    );
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- ToWorker's last type today; one added later must not fall into close()
  } else if (message.type === 'close') {
    void close();
  }
});

async function close(): Promise<void> {
  try {
    await client.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs).unref();
    });
    management.close();
    await sso.close();
    await closeCore(core);
  } catch (err) {
    logger.error({ err }, 'management worker: error while closing');
  }
  port.close();
}

// Folders that crashed instances left in the temp directory (this isolate may open client sockets to check them).
await removeStaleSocketFolders(logger);
rmSync(init.socketPath, { force: true });
server.listen(init.socketPath, () => {
  const waiting = early ?? [];
  early = null;
  for (const m of waiting) forward(m);
  send({ type: 'ready' });
});
