import type { Express } from 'express';
import type { Logger } from '../log/logger.ts';

/** A dependency /readyz checks: it throws when the dependency cannot be reached. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export function registerHealthRoutes(app: Express, deps: { logger: Logger; readinessChecks: ReadinessCheck[] }): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    let ok = true;
    for (const { name, check } of deps.readinessChecks) {
      try {
        await check();
        checks[name] = 'ok';
      } catch (err) {
        ok = false;
        checks[name] = 'unreachable';
        deps.logger.warn({ err, check: name }, 'readiness: dependency unreachable');
      }
    }
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  });
}
