import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, sql } from 'kysely';
import type { DatabaseConnection, DialectAdapter, Driver, Migration, MigrationProvider, SqliteDialectConfig } from 'kysely';
import pg from 'pg';
import { dialectCaps } from './dialect.ts';
import type { DialectCaps } from './dialect.ts';
import { migrations } from './migrations/index.ts';
import { createPrivateFile, sqliteFileOf } from './private-files.ts';
import { UnavailableMappingDialect, destroyingBrokenClients } from './unavailable.ts';

/** An open database; `DB` is the type of its tables, composed in src/storage.ts (this folder knows no feature). */
export interface Database<DB> {
  db: Kysely<DB>;
  caps: DialectCaps;
  ping(): Promise<void>;
  /**
   * Runs `fn` on a connection without the per-query time bound (TRACKGATE_DATABASE_TIMEOUT_MS): for
   * migrations, whose DDL on a large table may rightly take minutes. Reaching the database is still bounded.
   */
  unbounded<T>(fn: (db: Kysely<DB>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  poolSize?: number;
  /**
   * The longest a query waits (TRACKGATE_DATABASE_TIMEOUT_MS): SQLite's busy timeout; PostgreSQL's
   * connect timeout, the client's read timeout and the server's statement_timeout. Past it the query
   * fails as unavailable (src/db/unavailable.ts), so a slow or partitioned database is a bounded wait
   * and a 503, never a request that hangs.
   */
  timeoutMs?: number;
}

/** TRACKGATE_DATABASE_TIMEOUT_MS's default (src/config/config.ts). */
const DEFAULT_TIMEOUT_MS = 5000;

export function openDatabase<DB>(url: string, options: OpenDatabaseOptions = {}): Database<DB> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (url.startsWith('sqlite:')) {
    const file = sqliteFileOf(url);
    // Created 0600 (in a 0700 folder) before SQLite opens it: SQLite gives its -wal and -shm files the same mode.
    if (file) createPrivateFile(file);
    const sqlite = new SQLite(file ?? ':memory:');
    // WAL lets the CLI and a running server share the file; the busy timeout
    // makes a writer wait for the other process instead of failing at once.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${String(Math.trunc(timeoutMs))}`);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('synchronous = NORMAL');
    const db = new Kysely<DB>({ dialect: new UnavailableMappingDialect(new ImmediateSqliteDialect({ database: sqlite })) });
    return {
      db,
      caps: dialectCaps('sqlite'),
      ping: async () => {
        await sql`select 1`.execute(db);
      },
      // SQLite's busy timeout bounds waiting for a lock, not a statement's work.
      unbounded: (fn) => fn(db),
      close: () => db.destroy(),
    };
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: timeoutMs,
    // The client gives up a little after the server would have cancelled the statement, so that a slow
    // query ends cleanly as 57014 (the connection kept) and only a silent server costs the connection.
    query_timeout: timeoutMs + 250,
    statement_timeout: timeoutMs,
  });
  // An idle client whose server went away emits 'error' on the pool (which drops it): not a crash.
  pool.on('error', () => {});
  // destroyingBrokenClients also listens for 'error' on every client, checked out or not.
  const db = new Kysely<DB>({ dialect: new UnavailableMappingDialect(new PostgresDialect({ pool: destroyingBrokenClients(pool) })) });
  return {
    db,
    caps: dialectCaps('postgres'),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    unbounded: async (fn) => {
      const own = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: timeoutMs });
      own.on('error', () => {});
      const unboundedDb = new Kysely<DB>({ dialect: new UnavailableMappingDialect(new PostgresDialect({ pool: destroyingBrokenClients(own) })) });
      try {
        return await fn(unboundedDb);
      } finally {
        await unboundedDb.destroy();
      }
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
  const { error, results } = await database.unbounded((db) => new Migrator({ db, provider: new StaticProvider(migrations(database.caps)) }).migrateToLatest());
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever a migration threw that is not an Error
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
