import type { RequestHandler } from '../http/server.ts';
import { onlyGetOrHead, sendJson } from '../http/raw-response.ts';
import type { Logger } from '../log/logger.ts';
import type { TrustedProxies } from '../http/client-ip.ts';

/**
 * Something /readyz checks. `check` throws when a dependency cannot be reached ("unreachable"), or
 * resolves to its state: 'ok' when fine, 'none' when it does not apply to this setup, any
 * other word when the instance works with less (the answer is then "degraded", still 200).
 * `required`: an unreachable dependency without which the instance cannot serve (503); otherwise
 * unreachable only degrades it.
 */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<string>;
  required: boolean;
}

const FINE = new Set(['ok', 'none']);

/**
 * /healthz and /readyz as lean handlers, not Express routes: probes arrive
 * every few seconds for the life of the process, and every request that goes
 * through Express leaves Node's HTTP code slower for the hot paths (its
 * request and response objects make V8's inline caches there megamorphic;
 * BENCHMARKS.md), so the probes stay off Express.
 */
export function createHealthHandlers(deps: { logger: Logger; readinessChecks: ReadinessCheck[]; trustedProxies: TrustedProxies; config: { databaseTimeoutMs: number } }): Map<string, RequestHandler> {
  // A probe must get an answer even from a partitioned dependency, which neither answers nor refuses.
  const checkTimeoutMs = deps.config.databaseTimeoutMs;
  const healthz: RequestHandler = (req, res) => {
    if (!onlyGetOrHead(req, res, deps.trustedProxies)) return;
    sendJson(req, res, 200, HEALTHY);
  };
  const readyz: RequestHandler = (req, res) => {
    if (!onlyGetOrHead(req, res, deps.trustedProxies)) return;
    void (async () => {
      const checks: Record<string, string> = {};
      let ready = true;
      let degraded = false;
      for (const { name, check, required } of deps.readinessChecks) {
        try {
          const state = await withinTime(check(), checkTimeoutMs);
          checks[name] = state;
          if (!FINE.has(state)) degraded = true;
        } catch (err) {
          if (required) ready = false;
          else degraded = true;
          checks[name] = 'unreachable';
          deps.logger.warn({ err, check: name }, 'readiness: dependency unreachable');
        }
      }
      const status = !ready ? 'unavailable' : degraded ? 'degraded' : 'ok';
      sendJson(req, res, ready ? 200 : 503, JSON.stringify({ status, checks }));
    })();
  };
  return new Map([
    ['/healthz', healthz],
    ['/readyz', readyz],
  ]);
}

const HEALTHY = JSON.stringify({ status: 'ok' });

/** The check's own outcome, or a rejection after `ms` if it has none by then. */
function withinTime<T>(check: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${String(ms)} ms`)), ms);
  });
  return Promise.race([check, late]).finally(() => clearTimeout(timer));
}
