import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log/logger.ts';

/**
 * The management worker's private socket lives in a folder of its own under
 * the temp directory, named with the owning process's id
 * (`trackgate-mgmt-<pid>-XXXXXX`), so that a later start can tell a folder
 * left by a crashed process from one a live instance is using.
 */
const PREFIX = 'trackgate-mgmt-';
const NAME = /^trackgate-mgmt-(\d+)-[A-Za-z0-9]{6}$/;
export const SOCKET_NAME = 'management.sock';

/** A new folder (0700, as mkdtemp makes it) for this process's management socket. */
export function makeSocketFolder(): string {
  return mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether something accepts connections on the socket (a live instance in another pid namespace sharing this temp directory). */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(true); // unsure: keep it
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Removes the socket folders that crashed processes left behind: only ours
 * (this user's, a real folder), only when the process named in it is gone
 * and nothing answers on its socket. Never this process's own folders (tests
 * run several instances in one process), never a live instance's. Folders of
 * older versions (no pid in the name) are left alone: their owner cannot be told.
 * Runs in the management worker, whose isolate may open client sockets (the main one keeps Node's net code for its server).
 */
export async function removeStaleSocketFolders(logger: Logger, dir = tmpdir()): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      if (await socketAnswers(join(path, SOCKET_NAME))) continue;
      rmSync(path, { recursive: true, force: true });
      removed++;
      logger.info({ folder: path, pid }, 'removed the management socket folder of a process that is gone');
    } catch (err) {
      logger.warn({ err, folder: path }, 'could not remove a stale management socket folder');
    }
  }
  return removed;
}
