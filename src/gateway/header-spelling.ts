/**
 * Header names that another server may read as a different name. CGI/WSGI (HTTP_X_TRACKGATE_USER),
 * Rack and gunicorn fold "-" and "_" into one, and some stacks "." too: to them `X_Trackgate_User`
 * is trackgate's `X-Trackgate-User`. nginx drops such names by default (underscores_in_headers off,
 * ignore_invalid_headers on); trackgate does the same, and the tracking client sends none.
 */
export function hasFoldedSpelling(name: string): boolean {
  return name.indexOf('_') !== -1 || name.indexOf('.') !== -1;
}

/**
 * The first of a request's headers that is spelled (with "_" or ".") to pass for an identity header
 * after folding: X-Trackgate-*, or the attribution headers X-WANDB-USERNAME / X-WANDB-USER-EMAIL;
 * undefined when there is none. For forward auth, where trackgate cannot drop what the ingress
 * passes on to the upstream, only refuse.
 */
export function forgedIdentityHeader(rawHeaders: readonly string[]): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    // Every name it looks for starts with "x": most headers (Host, Authorization, Accept) cost one char test.
    if ((name.charCodeAt(0) | 0x20) !== 0x78 || !hasFoldedSpelling(name)) continue;
    const folded = name.toLowerCase().replace(/[_.]/g, '-');
    if (folded.startsWith('x-trackgate-') || folded === 'x-wandb-username' || folded === 'x-wandb-user-email') return name;
  }
  return undefined;
}
