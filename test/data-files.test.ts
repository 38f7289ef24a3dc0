/**
 * File modes of the data folder (issue 13): the SQLite database, its -wal and -shm files and the
 * secret key are 0600 and their folder 0700 whatever the umask; files and folders an older version
 * left open (0644 in 0755) are tightened at start, with a log line; a folder that holds other files
 * is left as it is, with a warning.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { dialects, startApp } from './support/app.ts';
import type { Dialect, TestApp } from './support/app.ts';

const modeOf = (p: string) => '0' + (statSync(p).mode & 0o777).toString(8);
const scratch: string[] = [];
after(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

function freshParent(): string {
  const d = mkdtempSync(join(tmpdir(), 'trackgate-datafiles-'));
  scratch.push(d);
  return d;
}

/** Starts the app on `dataDir` (SQLite in it, or PostgreSQL) with the given umask, restored after. */
async function startOn(dialect: Dialect, dataDir: string, umask: number): Promise<TestApp> {
  const old = process.umask(umask);
  try {
    const app = await startApp(dialect, { dataDir, ...(dialect === 'sqlite' ? { databaseUrl: `sqlite:${join(dataDir, 'trackgate.db')}` } : {}) });
    // Some writes, so that the WAL holds something, then a read through the worker.
    const { adminKey } = await app.bootstrap();
    assert.equal((await app.request('GET', '/gateway/v1/me', { key: adminKey })).status, 200);
    return app;
  } finally {
    process.umask(old);
  }
}

for (const dialect of dialects()) {
  describe(`data folder file modes (${dialect})`, () => {
    test('a fresh data folder is 0700 and its files 0600, even with umask 000', async () => {
      const dataDir = join(freshParent(), 'nested', 'data');
      const app = await startOn(dialect, dataDir, 0o000);
      try {
        assert.equal(modeOf(dataDir), '0700', 'the data folder');
        assert.equal(modeOf(join(dataDir, '..')), '0700', 'a parent it had to create');
        assert.equal(modeOf(join(dataDir, 'secret.key')), '0600', 'the secret key');
        if (dialect === 'sqlite') {
          for (const f of ['trackgate.db', 'trackgate.db-wal', 'trackgate.db-shm']) {
            assert.ok(existsSync(join(dataDir, f)), `${f} exists (WAL mode)`);
            assert.equal(modeOf(join(dataDir, f)), '0600', f);
          }
        }
      } finally {
        await app.close();
      }
    });

    test("an older version's 0755 folder and 0644 files are tightened at start, and the log says so", async () => {
      const dataDir = join(freshParent(), 'data');
      const old = process.umask(0o022);
      try {
        mkdirSync(dataDir, { mode: 0o755 });
        writeFileSync(join(dataDir, 'secret.key'), 'a'.repeat(64) + '\n', { mode: 0o644 });
        if (dialect === 'sqlite') {
          // As better-sqlite3 left it before: 0644, in WAL mode, with a -wal and -shm file kept open meanwhile.
          const db = new SQLite(join(dataDir, 'trackgate.db'));
          db.pragma('journal_mode = WAL');
          db.exec('create table leftover (x integer)');
          db.close();
          writeFileSync(join(dataDir, 'trackgate.db-wal'), '', { mode: 0o644 });
          writeFileSync(join(dataDir, 'trackgate.db-shm'), '', { mode: 0o644 });
          assert.equal(modeOf(join(dataDir, 'trackgate.db')), '0644');
        }
        assert.equal(modeOf(dataDir), '0755');
      } finally {
        process.umask(old);
      }
      const app = await startOn(dialect, dataDir, 0o022);
      try {
        assert.equal(modeOf(dataDir), '0700');
        assert.equal(modeOf(join(dataDir, 'secret.key')), '0600');
        if (dialect === 'sqlite') for (const f of ['trackgate.db', 'trackgate.db-wal', 'trackgate.db-shm']) assert.equal(modeOf(join(dataDir, f)), '0600', f);
        const log = readFileSync(app.logFile, 'utf8');
        assert.match(log, new RegExp(`"path":"${join(dataDir, 'secret.key')}","from":"0644","to":"0600".*tightened`));
        assert.match(log, new RegExp(`"path":"${dataDir}","from":"0755","to":"0700".*tightened`));
      } finally {
        await app.close();
      }
    });

    test('a folder that holds other files is left as it is (with a warning); the files are still 0600', async () => {
      const dataDir = join(freshParent(), 'project');
      mkdirSync(dataDir);
      const old = process.umask(0o022);
      try {
        mkdirSync(join(dataDir, 'src'), { mode: 0o755 });
        writeFileSync(join(dataDir, 'README.md'), 'someone else\'s files\n', { mode: 0o644 });
        chmodSync(dataDir, 0o755);
      } finally {
        process.umask(old);
      }
      const app = await startOn(dialect, dataDir, 0o022);
      try {
        assert.equal(modeOf(dataDir), '0755', 'not changed');
        assert.equal(modeOf(join(dataDir, 'README.md')), '0644', 'not changed');
        assert.equal(modeOf(join(dataDir, 'secret.key')), '0600');
        if (dialect === 'sqlite') assert.equal(modeOf(join(dataDir, 'trackgate.db')), '0600');
        assert.match(readFileSync(app.logFile, 'utf8'), /"reason":"it holds other files besides trackgate's".*left readable by other users/);
      } finally {
        await app.close();
      }
    });
  });
}
