import { createHash } from 'node:crypto';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the stub tracking API received. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** The body, when it was at most 1 MiB. */
  body: Buffer | null;
  bodyBytes: number;
  bodySha256: string;
  /** When the first body byte arrived and when the body ended (epoch ms). */
  firstByteAt: number | null;
  endAt: number;
}

export type UpstreamRoute = (req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest) => void;

export interface StubUpstream {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Calls `fn` for requests whose path starts with `prefix` instead of the default echo. */
  route(prefix: string, fn: UpstreamRoute): void;
  /** Resolves when the upstream has seen body bytes for a request in flight. */
  firstBodyByte(): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

const KEEP = 1024 * 1024;

/**
 * A small tracking API stand-in: records every request (headers, body) and
 * answers with a JSON echo, or with a route the test sets (slow answers,
 * streamed answers, odd statuses).
 */
export async function startUpstream(): Promise<StubUpstream> {
  const requests: RecordedRequest[] = [];
  const routes: Array<[string, UpstreamRoute]> = [];
  let bodyWaiters: Array<() => void> = [];

  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let bytes = 0;
    let firstByteAt: number | null = null;
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: null,
      bodyBytes: 0,
      bodySha256: '',
      firstByteAt: null,
      endAt: 0,
    };
    const route = routes.find(([prefix]) => (req.url ?? '').startsWith(prefix));
    req.on('data', (c: Buffer) => {
      if (firstByteAt === null) {
        firstByteAt = Date.now();
        recorded.firstByteAt = firstByteAt;
        const w = bodyWaiters;
        bodyWaiters = [];
        for (const f of w) f();
      }
      bytes += c.length;
      hash.update(c);
      if (bytes <= KEEP) chunks.push(c);
    });
    req.on('end', () => {
      recorded.bodyBytes = bytes;
      recorded.bodySha256 = hash.digest('hex');
      recorded.body = bytes <= KEEP ? Buffer.concat(chunks) : null;
      recorded.endAt = Date.now();
      requests.push(recorded);
      if (route) return;
      const body = JSON.stringify({ ok: true, method: recorded.method, url: recorded.url, bytes, sha256: recorded.bodySha256 });
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Upstream': 'stub', 'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/'] });
      res.end(body);
    });
    if (route) route[1](req, res, recorded);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    route(prefix, fn) {
      routes.unshift([prefix, fn]);
    },
    firstBodyByte() {
      return new Promise<void>((resolve) => bodyWaiters.push(resolve));
    },
    reset() {
      requests.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
