import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePrivateDir } from '../db/private-files.ts';

/**
 * Encrypts secrets at rest (SSO client secrets, signing keys) with AES-256-GCM
 * under a key derived from TRACKGATE_SECRET_KEY. Each purpose gets its own
 * derived key, so a ciphertext cannot be replayed as another kind of secret.
 * Format: "v1.<iv>.<tag>.<ciphertext>", base64url parts.
 */
/**
 * A sealed secret that does not open with this key: the database was sealed under another secret key. Said
 * plainly (Node's own words are "Unsupported state or unable to authenticate data"), with where the key
 * came from, so that the operator knows which one to restore.
 */
export class SecretKeyMismatchError extends Error {
  constructor(source: string) {
    super(
      `the secret key (${source}) does not match the one that sealed this database's secrets (assertion signing keys, SSO client secrets). ` +
        'Restore the key it was first started with — TRACKGATE_SECRET_KEY as it was set then, or the data folder\'s secret.key — ' +
        'or, holding both keys, re-seal with `trackgate rotate-secret-key --from-file <a file holding the old key>` (docs/OPERATIONS.md, "Rotating the secret key")',
    );
    this.name = 'SecretKeyMismatchError';
  }
}

export class SecretBox {
  private readonly master: Buffer;

  /** `source`: where the key came from, for the operator's error (a variable's name or a file's path; never the key). */
  constructor(
    secretKey: string,
    private readonly source = 'TRACKGATE_SECRET_KEY',
  ) {
    this.master = decodeSecretKey(secretKey);
  }

  private keyFor(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.master, Buffer.alloc(0), `trackgate:${purpose}`, 32));
  }

  encrypt(purpose: string, plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keyFor(purpose), iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  decrypt(purpose: string, sealed: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('sealed secret has an unknown format');
    const decipher = createDecipheriv('aes-256-gcm', this.keyFor(purpose), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // GCM's authentication failed: sealed under another key (or altered; the two cannot be told apart).
      throw new SecretKeyMismatchError(this.source);
    }
  }

  /** A stable sub-key for other uses (session cookie signing, CSRF tokens). */
  derive(purpose: string): Buffer {
    return this.keyFor(purpose);
  }
}

function decodeSecretKey(value: string): Buffer {
  const v = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
  const b = Buffer.from(v, 'base64');
  if (b.length >= 32) return b;
  // Any other long-enough string (a passphrase) still gives a full-strength key.
  return createHash('sha256').update(v).digest();
}

/**
 * The configured secret key, or the one kept in the data folder, generated
 * there (mode 0600) on first start; and where it came from (TRACKGATE_SECRET_KEY, or the file's path).
 */
export function resolveSecretKey(configured: string | undefined, dataDir: string): { key: string; source: string } {
  if (configured) return { key: configured, source: 'TRACKGATE_SECRET_KEY' };
  const file = join(dataDir, 'secret.key');
  return { key: readOrCreateKeyFile(file, dataDir), source: file };
}

function readOrCreateKeyFile(file: string, dataDir: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  makePrivateDir(dataDir);
  const generated = randomBytes(32).toString('hex');
  try {
    writeFileSync(file, generated + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process (the CLI and the server starting together) wrote it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw err;
  }
  chmodSync(file, 0o600);
  return generated;
}
