import http from 'node:http';
import { freePort, waitForPort } from './ports.ts';

/**
 * A stand-in for the tracking API behind the proxy that can be stopped and started again on the same
 * port (a restart or a deploy of the upstream): every request is answered 200 with a small JSON body.
 * Listens on 127.0.0.1 only.
 */
export class TrackingApi {
  private server: http.Server | null = null;
  /** Requests answered since start. */
  answered = 0;

  private constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<TrackingApi> {
    const api = new TrackingApi(port ?? (await freePort()));
    await api.startServer();
    return api;
  }

  async startServer(): Promise<void> {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        this.answered++;
        const body = JSON.stringify({ ok: true, path: req.url });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
    await waitForPort(this.port);
  }

  /** Stops at once: open connections are cut, as when the process is killed; the port is closed until startServer(). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
