import type { Express } from 'express';
import type { Core } from '../app.ts';

export function registerHealthRoutes(app: Express, core: Pick<Core, 'database' | 'logger'> & { readinessChecks?: Array<() => Promise<void>> }): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    let ok = true;
    try {
      await core.database.ping();
      checks.database = 'ok';
    } catch (err) {
      ok = false;
      checks.database = 'unreachable';
      core.logger.warn({ err }, 'readiness: database unreachable');
    }
    for (const check of core.readinessChecks ?? []) {
      try {
        await check();
      } catch (err) {
        ok = false;
        checks[(err as Error & { check?: string }).check ?? 'dependency'] = 'unreachable';
      }
    }
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  });
}
