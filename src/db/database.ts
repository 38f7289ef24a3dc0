import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, sql } from 'kysely';
import type { DatabaseConnection, DialectAdapter, Driver, Migration, MigrationProvider, SqliteDialectConfig } from 'kysely';
import pg from 'pg';
import { dialectCaps } from './dialect.ts';
import type { DialectCaps } from './dialect.ts';
import { migrations } from './migrations/index.ts';
import { createPrivateFile, sqliteFileOf } from './private-files.ts';

/** An open database; `DB` is the type of its tables, composed in src/storage.ts (this folder knows no feature). */
export interface Database<DB> {
  db: Kysely<DB>;
  caps: DialectCaps;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function openDatabase<DB>(url: string, options: { poolSize?: number } = {}): Database<DB> {
  if (url.startsWith('sqlite:')) {
    const file = sqliteFileOf(url);
    // Created 0600 (in a 0700 folder) before SQLite opens it: SQLite gives its -wal and -shm files the same mode.
    if (file) createPrivateFile(file);
    const sqlite = new SQLite(file ?? ':memory:');
    // WAL lets the CLI and a running server share the file; the busy timeout
    // makes a writer wait for the other process instead of failing at once.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('synchronous = NORMAL');
    const db = new Kysely<DB>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
    return {
      db,
      caps: dialectCaps('sqlite'),
      ping: async () => {
        await sql`select 1`.execute(db);
      },
      close: () => db.destroy(),
    };
  }
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
  // A dropped connection must not become an unhandled 'error' event, which ends the process: the pool
  // listens on idle clients only, and a checked-out client whose server goes away (a PostgreSQL crash
  // between two queries of a request) emits 'error' too. The query that needed it fails and is answered.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    caps: dialectCaps('postgres'),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

/**
 * SQLite transactions that take the write lock when they begin. Several
 * connections write to one file (the management isolate, the hot paths' last-used
 * writer, the CLI, a second instance); a deferred transaction that read before
 * another connection committed cannot upgrade to a write in WAL mode and fails
 * with SQLITE_BUSY at once, without waiting for the busy timeout.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/**
 * Migrations of SQLite in one transaction. Kysely's SQLite adapter takes no lock and no transaction for
 * them, so instances starting at once on an empty file each ran the same migrations (and all but one
 * failed to start: table already exists). As one transaction, begun `immediate` (the driver above), the
 * first instance holds the write lock while it migrates; the others wait (the busy timeout), then read the
 * migration table again and find nothing left to do. SQLite's DDL is transactional, so a failed migration
 * also leaves nothing behind.
 */
class TransactionalMigrationsSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly sqliteConfig: SqliteDialectConfig) {
    super(sqliteConfig);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.sqliteConfig);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalMigrationsSqliteAdapter();
  }
}

class StaticProvider implements MigrationProvider {
  constructor(private readonly all: Record<string, Migration>) {}
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve(this.all);
  }
}

export async function migrateToLatest<DB>(database: Database<DB>): Promise<string[]> {
  const migrator = new Migrator({ db: database.db, provider: new StaticProvider(migrations(database.caps)) });
  const { error, results } = await migrator.migrateToLatest();
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever a migration threw that is not an Error
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
