import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { basic } from '../app.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const run = promisify(execFile);

/**
 * Settings for a deployment of real gateway processes on one SQLite file (for faults that do not
 * concern the database: the upstream, an IdP). Instances given the same settings share the data.
 */
export function sqliteDeployment(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TRACKGATE_DATABASE_URL: `sqlite:${join(dir, 'trackgate.db')}`,
    TRACKGATE_DATA_DIR: dir,
    TRACKGATE_SECRET_KEY: randomBytes(32).toString('hex'),
    TRACKGATE_LAST_USED_FLUSH_MS: '200',
    TRACKGATE_AUTH_FAILURE_LIMIT: '1000000',
    ...extra,
  };
}

/** `trackgate bootstrap` against a deployment's settings, as an operator runs it: the admin's key and names. */
export async function bootstrapAdmin(env: Record<string, string>, org = `fault-${randomBytes(3).toString('hex')}`): Promise<{ org: string; adminKey: string; admin: string }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'bootstrap', '--email', `admin@${org}.example`, '--org', org, '--plan', 'enterprise', '--username', `${org}-admin`, '--json'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', TRACKGATE_LOG_LEVEL: 'warn', ...env },
    timeout: 60_000,
  });
  const r = JSON.parse(stdout) as { api_key: string; user: { username: string } };
  return { org, adminKey: r.api_key, admin: r.user.username };
}


/** `n` personal keys of the key's owner, made through the management API of `url`. */
export async function createKeys(url: string, ownerKey: string, n: number): Promise<Array<{ id: string; key: string }>> {
  const out: Array<{ id: string; key: string }> = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${url}/gateway/v1/me/keys`, {
      method: 'POST',
      headers: { authorization: basic(ownerKey), 'content-type': 'application/json' },
      body: JSON.stringify({ name: `fault-load-${i}-${randomBytes(2).toString('hex')}` }),
    });
    const text = await r.text();
    if (r.status !== 201) throw new Error(`creating a key answered ${r.status}: ${text}`);
    const body = JSON.parse(text) as { id: string; key: string };
    out.push({ id: body.id, key: body.key });
  }
  return out;
}

/** Revokes a key through the management API; resolves with the time the revocation was answered. */
export async function revokeKey(url: string, adminKey: string, id: string): Promise<number> {
  const r = await fetch(`${url}/gateway/v1/keys/${id}`, { method: 'DELETE', headers: { authorization: basic(adminKey) } });
  if (r.status !== 204) throw new Error(`revoking a key answered ${r.status}: ${await r.text()}`);
  return Date.now();
}
