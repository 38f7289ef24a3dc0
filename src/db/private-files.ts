import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../log/logger.ts';

/**
 * The data folder holds secrets (the SQLite database with its WAL and shared-memory files, the
 * secret key): folders are 0700, files 0600, whatever the process's umask.
 *
 * Why not set the umask around the calls that create them: process.umask() is process-wide (it
 * would race with anything else creating files meanwhile) and cannot be set at all in a worker
 * thread, where the management isolate opens the database too. Instead each file is created with
 * its mode before anything writes to it (the database file before better-sqlite3 opens it: SQLite
 * gives the -wal and -shm files the database file's mode), and the modes are checked afterwards.
 */

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** A folder for private files: created 0700 (with any missing parents) when it does not exist. */
export function makePrivateDir(dir: string): void {
  if (existsSync(dir)) return;
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is masked by the umask, which may only remove bits; set it exactly.
  chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Creates `file` empty with mode 0600 unless it exists (an existing file is left to tightenPrivateFiles, which reports it). */
export function createPrivateFile(file: string): void {
  makePrivateDir(dirname(file));
  if (existsSync(file)) return;
  // 'a' creates without truncating: another process (the CLI, a second instance) may create it at the same moment.
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  if ((statSync(file).mode & 0o777) !== PRIVATE_FILE_MODE && isOwn(file)) chmodSync(file, PRIVATE_FILE_MODE);
}

export interface Tightened {
  /** Paths whose mode was made 0600 / 0700, with the mode they had. */
  tightened: Array<{ path: string; from: string; to: string }>;
  /** Paths left readable by others, and why (a folder that holds other files, one owned by another user). */
  left: Array<{ path: string; mode: string; reason: string }>;
}

const octal = (m: number) => '0' + (m & 0o777).toString(8);

/**
 * Brings files created by older versions (0644, in a 0755 folder) to 0600 and their folders to
 * 0700. A folder is tightened only when it evidently belongs to trackgate: owned by this user, not
 * sticky (/tmp), and holding nothing but these files; otherwise (say the database sits in a project
 * folder or a shared one) it is reported and left, since the files in it are private anyway.
 */
export function tightenPrivateFiles(files: string[]): Tightened {
  const out: Tightened = { tightened: [], left: [] };
  const present = files.filter((f) => existsSync(f));
  for (const file of present) {
    const mode = statSync(file).mode;
    if ((mode & 0o077) === 0) continue;
    if (!isOwn(file)) {
      out.left.push({ path: file, mode: octal(mode), reason: 'owned by another user' });
      continue;
    }
    chmodSync(file, PRIVATE_FILE_MODE);
    out.tightened.push({ path: file, from: octal(mode), to: octal(PRIVATE_FILE_MODE) });
  }
  const ours = new Set(files.map((f) => basename(f)));
  for (const dir of new Set(files.map((f) => dirname(f)))) {
    if (!existsSync(dir)) continue;
    const st = statSync(dir);
    if ((st.mode & 0o077) === 0) continue;
    const reason =
      !isOwn(dir) ? 'owned by another user'
      : (st.mode & 0o1000) !== 0 ? 'a shared (sticky) folder'
      : readdirSync(dir).some((name) => !ours.has(name)) ? 'it holds other files besides trackgate\'s'
      : null;
    if (reason) {
      out.left.push({ path: dir, mode: octal(st.mode), reason });
      continue;
    }
    chmodSync(dir, PRIVATE_DIR_MODE);
    out.tightened.push({ path: dir, from: octal(st.mode), to: octal(PRIVATE_DIR_MODE) });
  }
  return out;
}

/** The SQLite database file and the files SQLite keeps beside it. */
export function sqliteFiles(dbFile: string): string[] {
  return [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`];
}

function isOwn(path: string): boolean {
  const uid = process.getuid?.();
  return uid === undefined || statSync(path).uid === uid;
}

/** The SQLite database file of a `sqlite:` URL; null for PostgreSQL and an in-memory database. */
export function sqliteFileOf(databaseUrl: string): string | null {
  if (!databaseUrl.startsWith('sqlite:')) return null;
  const file = databaseUrl.slice('sqlite:'.length);
  return file === ':memory:' ? null : resolve(file);
}

/**
 * At start: the database's files and the generated secret key to 0600, their folders to 0700 where
 * that is safe (tightenPrivateFiles), and a log line for each change and for what was left open.
 */
export function tightenDataFiles(input: { databaseUrl: string; dataDir: string; secretKeyConfigured: boolean }, logger: Logger): Tightened {
  const db = sqliteFileOf(input.databaseUrl);
  const files = [...(db ? sqliteFiles(db) : []), ...(input.secretKeyConfigured ? [] : [join(input.dataDir, 'secret.key')])];
  const result = tightenPrivateFiles(files);
  for (const t of result.tightened) logger.warn({ path: t.path, from: t.from, to: t.to }, 'data files: tightened a mode left open by an older version');
  for (const l of result.left) logger.warn({ path: l.path, mode: l.mode, reason: l.reason }, 'data files: left readable by other users; make it 0700 yourself if it holds nothing else');
  return result;
}
