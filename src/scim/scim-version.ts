import { createHash } from 'node:crypto';
import { AppError } from '../errors/app-error.ts';

/**
 * A SCIM resource's version (meta.version, the ETag): a weak tag of a digest of what `parts` say, so every
 * instance computes the same one without storing it.
 */
export function versionTag(parts: unknown): string {
  return `W/"${createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22)}"`;
}

/** Whether an If-Match header allows a change of a resource at `version`: absent or `*` yes; weak comparison (RFC 7232 §2.3.2). */
export function requireIfMatch(ifMatch: string | undefined, version: string, what: string): void {
  if (ifMatch === undefined || ifMatch.trim() === '' || ifMatch.trim() === '*') return;
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  if (!ifMatch.split(',').some((t) => bare(t) === bare(version))) {
    throw new AppError('scim_version_mismatch', `the ${what} changed since version ${ifMatch.slice(0, 60)}; read it again (its version is ${version})`);
  }
}
