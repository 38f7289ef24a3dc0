import { rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { closeCore, createCore, createWiredSso } from '../core.ts';
import { ThreadInvalidationTransport } from '../auth/thread-invalidation.ts';
import { setForwardedPeer } from '../http/client-ip.ts';
import { createHttpServer } from '../http/server.ts';
import { createLogger } from '../log/logger.ts';
import { Metrics } from '../metrics/metrics.ts';
import { createManagementApp } from './management-app.ts';
import { PEER_HEADER } from './worker-protocol.ts';
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
const core = await createCore(config, { logger, migrate: false });
core.invalidator.attach(new ThreadInvalidationTransport(init.invalidationChannel));
const sso = createWiredSso(core, { servesSso: true });
const metrics = new Metrics({}, { process: false, requests: true });
const management = createManagementApp(core, sso, metrics);
core.lastUsed.start();

const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
  takePeer(req);
  management.app(req, res);
});

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

const send = (message: FromWorker) => port.postMessage(message);

port.on('message', (message: ToWorker) => {
  if (message.type === 'metrics') {
    metrics.text().then(
      (text) => send({ type: 'metrics', id: message.id, text }),
      () => send({ type: 'metrics', id: message.id, text: '' }),
    );
  } else if (message.type === 'close') {
    void close();
  }
});

async function close(): Promise<void> {
  try {
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

rmSync(init.socketPath, { force: true });
server.listen(init.socketPath, () => send({ type: 'ready' }));
