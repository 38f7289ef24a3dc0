import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger };

/**
 * Anything that can carry a credential is censored wherever it appears in a
 * log object. Keys are also never put in log messages by the code: this is the
 * second line of defence.
 */
export const REDACT_PATHS = [
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'key',
  'api_key',
  'apiKey',
  'secret',
  'client_secret',
  'clientSecret',
  'password',
  'token',
  'id_token',
  'access_token',
  'assertion',
  '*.key',
  '*.api_key',
  '*.apiKey',
  '*.secret',
  '*.client_secret',
  '*.clientSecret',
  '*.password',
  '*.token',
  '*.id_token',
  '*.access_token',
  '*.assertion',
  '*.authorization',
  '*.cookie',
];

export function createLogger(options: { level: string; file?: string | undefined; fd?: number; name?: string }): Logger {
  const destination = options.file
    ? pino.destination({ dest: options.file, sync: true, mkdir: true })
    : pino.destination({ dest: options.fd ?? 1, sync: options.fd === 2 });
  return pino(
    {
      name: options.name ?? 'trackgate',
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    destination,
  );
}
