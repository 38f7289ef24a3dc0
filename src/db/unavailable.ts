// The storage layer is the one place that knows the drivers' errors. Those that mean "the database cannot
// be reached or did not answer in time" become errors.unavailable (a 503 with Retry-After at the edge)
// where they leave it: every query goes through Kysely's driver, so wrapping the driver covers
// repositories, transactions, the database session store and migrations alike. Anything else (a
// syntax error, a constraint violation) is a bug or a conflict and passes through untouched.
import type { DatabaseConnection, Dialect, Driver, Kysely, QueryCompiler, QueryResult, TransactionSettings, CompiledQuery } from 'kysely';
import type pg from 'pg';
import { errors, isUnavailable } from '../errors/app-error.ts';

/**
 * SQLSTATEs of PostgreSQL that mean "not now" rather than "not this":
 * - class 08, connection exceptions;
 * - 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or in recovery);
 * - 53300 too_many_connections;
 * - 57014 query_canceled: statement_timeout (TRACKGATE_DATABASE_TIMEOUT_MS), or an operator's cancel;
 * - 40001 serialization_failure and 40P01 deadlock_detected: the transaction was rolled back whole, so
 *   nothing is left behind and the same request succeeds when tried again: "try again shortly" is the
 *   true answer, a 500 is not.
 */
const PG_UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '40001', '40P01']);

/** Socket errors on the way to the server (a stopped server, a cut or partitioned network, DNS not answering). */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

/**
 * node-postgres and pg-pool say these in words only (no code): the pool's connect timeout
 * (connectionTimeoutMillis), the client's query_timeout, a server that went away mid-query, and a client
 * that saw one of those before.
 */
const PG_UNAVAILABLE_MESSAGES = /^(timeout exceeded when trying to connect|Connection terminated|Query read timeout|Client has encountered a connection error and is not queryable|Connection ended unexpectedly)/;

/**
 * better-sqlite3's codes (extended ones too: SQLITE_BUSY_SNAPSHOT, SQLITE_IOERR_WRITE, ...): locked past
 * the busy timeout, a full disk or max_page_count, I/O errors, a file that cannot be opened or written,
 * out of memory.
 */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|NOMEM)/;

/** Whether a driver's error means the database is unavailable (see above for which). */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (code !== '') {
    if (code.startsWith('08') && code.length === 5) return true;
    if (PG_UNAVAILABLE_STATES.has(code) || NETWORK_CODES.has(code) || SQLITE_UNAVAILABLE.test(code)) return true;
  }
  if (typeof e.message === 'string' && PG_UNAVAILABLE_MESSAGES.test(e.message)) return true;
  // Node reports a refused connection to a name with several addresses as an AggregateError of each attempt.
  if (Array.isArray(e.errors)) return e.errors.some(isDatabaseUnavailable);
  return false;
}

/** The error to pass on: errors.unavailable for an unavailable database (the driver's error as its cause), else the error itself. */
export function databaseError(err: unknown): unknown {
  if (isUnavailable(err)) return err;
  return isDatabaseUnavailable(err) ? errors.unavailable('the database', err) : err;
}

function isAlreadyRolledBack(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === 'SQLITE_ERROR' && typeof e.message === 'string' && e.message.includes('no transaction is active');
}

function rethrow(err: unknown): never {
  throw databaseError(err);
}

/** `fn`'s outcome, its error mapped: whether it rejects or throws at once (better-sqlite3 is synchronous, so Kysely's SQLite connection throws). */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    rethrow(err);
  }
}

/** A connection whose every query maps its error; the driver's own connection is kept beside it. */
class MappedConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return mapped(() => this.inner.executeQuery<R>(compiledQuery));
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(compiledQuery, chunkSize);
    } catch (err) {
      rethrow(err);
    }
  }
}

function innerOf(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof MappedConnection ? connection.inner : connection;
}

/** Any Kysely driver, with its errors mapped (connections, transactions, savepoints). */
class MappedDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return mapped(() => this.inner.init());
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new MappedConnection(await mapped(() => this.inner.acquireConnection()));
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return mapped(() => this.inner.beginTransaction(innerOf(connection), settings));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return mapped(() => this.inner.commitTransaction(innerOf(connection)));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await this.inner.rollbackTransaction(innerOf(connection));
    } catch (err) {
      // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM,
      // some SQLITE_BUSY): rolling back again then fails, and that error would replace the one that
      // caused it (a 500 in place of the 503). The transaction is undone either way.
      if (isAlreadyRolledBack(err)) return;
      rethrow(err);
    }
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.savepoint) throw new Error('savepoints are not supported by this driver');
    const inner = this.inner.savepoint.bind(this.inner);
    await mapped(() => inner(innerOf(connection), name, compile));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.rollbackToSavepoint) throw new Error('savepoints are not supported by this driver');
    const inner = this.inner.rollbackToSavepoint.bind(this.inner);
    await mapped(() => inner(innerOf(connection), name, compile));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.releaseSavepoint) throw new Error('savepoints are not supported by this driver');
    const inner = this.inner.releaseSavepoint.bind(this.inner);
    await mapped(() => inner(innerOf(connection), name, compile));
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(innerOf(connection));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** A dialect (either) whose driver maps the unavailable errors; everything else is the dialect's own. */
export class UnavailableMappingDialect implements Dialect {
  constructor(private readonly inner: Dialect) {}

  createDriver(): Driver {
    return new MappedDriver(this.inner.createDriver());
  }

  createQueryCompiler(): QueryCompiler {
    return this.inner.createQueryCompiler();
  }

  createAdapter(): ReturnType<Dialect['createAdapter']> {
    return this.inner.createAdapter();
  }

  createIntrospector(db: Kysely<unknown>): ReturnType<Dialect['createIntrospector']> {
    return this.inner.createIntrospector(db);
  }
}

/** What Kysely's PostgresDialect needs of a pool. */
interface KyselyPgPool {
  connect(): Promise<pg.PoolClient>;
  end(): Promise<void>;
}

/**
 * A pg pool whose clients are destroyed, not kept, once they timed out or saw a connection error: a
 * client whose query timed out may sit on a black-holed socket (a partition sends no RST), and handed to
 * the next request it would make that one wait the whole timeout too. pg-pool already drops a client
 * that is no longer queryable; this adds those whose socket still looks open.
 */
export function destroyingBrokenClients(pool: pg.Pool): KyselyPgPool {
  const broken = new WeakSet<pg.PoolClient>();
  pool.on('connect', (client) => {
    // A dropped connection must not become an unhandled 'error' event, which ends the process: the pool
    // listens on idle clients only, and a checked-out client whose server goes away (a PostgreSQL crash
    // between two queries of a request) emits 'error' too. The query that needed it fails and is answered.
    client.on('error', () => broken.add(client));
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    // Kysely calls query(sql, params) and awaits the promise; the callback and Submittable forms are left alone.
    (client as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const result = query(...args);
      if (result instanceof Promise) {
        result.catch((err: unknown) => {
          if (isDatabaseUnavailable(err)) broken.add(client);
        });
      }
      return result;
    };
  });
  return {
    async connect() {
      const client = await pool.connect();
      const release = client.release.bind(client);
      client.release = (destroy?: Error | boolean) => {
        release(destroy === true || destroy instanceof Error ? destroy : broken.has(client));
      };
      return client;
    },
    end: () => pool.end(),
  };
}
