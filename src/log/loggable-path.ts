/**
 * A request path (with or without its query) as it may be logged, by either isolate: a one-time
 * login link's token is a credential (src/web), so it never reaches a log line.
 */
export function loggablePath(path: string): string {
  return path.startsWith('/login/link/') ? '/login/link/[redacted]' : path;
}
