import type { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AddressList, TrustedProxies } from '../http/client-ip.ts';
import { errors } from '../errors/app-error.ts';
import type { RequestHandler } from '../http/server.ts';
import { onlyGetOrHead, requestIdOf, sendError, sendJson } from '../http/raw-response.ts';

/**
 * Prometheus metrics. The registry belongs to one app instance (no global
 * default registry), so several instances in one process — tests — do not
 * collide. The hot paths are not instrumented per request; what they hold
 * (cache sizes) is read at scrape time.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'> | null = null;
  private readonly duration: Histogram<'method' | 'route'> | null = null;

  /**
   * `process`: the process's own metrics (CPU, memory, event loop) and the gauges; `requests`: the
   * management API's request counters. With the management API in its worker, the main isolate
   * holds the first and the worker the second, and a scrape of /metrics gets both (no name twice).
   */
  constructor(gauges: Record<string, { help: string; read: () => number }> = {}, parts: { process: boolean; requests: boolean } = { process: true, requests: true }) {
    if (parts.process) collectDefaultMetrics({ register: this.registry, prefix: 'trackgate_' });
    if (!parts.requests) {
      this.registerGauges(gauges);
      return;
    }
    this.requests = new Counter({ name: 'trackgate_http_requests_total', help: 'Requests answered by the management API and pages', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
    this.duration = new Histogram({
      name: 'trackgate_http_request_duration_seconds',
      help: 'Time to answer management API and page requests',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.registerGauges(gauges);
  }

  private registerGauges(gauges: Record<string, { help: string; read: () => number }>): void {
    for (const [name, g] of Object.entries(gauges)) {
      new Gauge({
        name: `trackgate_${name}`,
        help: g.help,
        registers: [this.registry],
        collect() {
          this.set(g.read());
        },
      });
    }
  }

  /** Express middleware: counts by matched route pattern, never by raw path (unbounded label values). */
  middleware() {
    const duration = this.duration;
    const requests = this.requests;
    if (!duration || !requests) throw new Error('these metrics do not count requests');
    return (req: Request, res: Response, next: NextFunction) => {
      const end = duration.startTimer();
      res.on('finish', () => {
        // Express types req.route as any: the route that matched, if one did.
        const matched = (req.route as { path: string } | undefined)?.path;
        const route = matched ? `${req.baseUrl}${matched}` : 'unmatched';
        end({ method: req.method, route });
        requests.inc({ method: req.method, route, status: String(res.statusCode) });
      });
      next();
    };
  }

  /** The exposition text of this registry. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * GET /metrics as a lean handler (scrapes come for the life of the process and stay off Express, like
   * the health probes). Answered only to a scraper that connects directly: the socket peer in `allow`
   * (TRACKGATE_METRICS_ALLOW, loopback by default; never the trusted proxies, since a load balancer in
   * front relays anyone's request), and no X-Forwarded-For, Forwarded or X-Real-IP, which a relaying proxy
   * adds. Anything else is 404, as for a path that does not exist.
   * `trusted`: the trusted proxies, for the request id only. `more`: the exposition text of the other
   * isolate (the management worker), appended.
   */
  handler(allow: AddressList, trusted: TrustedProxies, more?: () => Promise<string>): RequestHandler {
    return (req, res) => {
      const relayed = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined || req.headers['x-real-ip'] !== undefined;
      if (relayed || !allow.has(req.socket.remoteAddress)) return sendError(req, res, errors.notFound('GET /metrics'), requestIdOf(req, trusted));
      if (!onlyGetOrHead(req, res)) return;
      Promise.all([this.registry.metrics(), more?.() ?? '']).then(([own, other]) => (other ? `${own}\n${other}` : own)).then(
        (text) => sendJson(req, res, 200, text, this.registry.contentType),
        (err: unknown) => sendError(req, res, err, requestIdOf(req, trusted)),
      );
    };
  }
}
