/**
 * What differs between the two databases, said once. Repository code never
 * asks which database it runs on; migrations and the error mapping ask this.
 */
export type DialectName = 'sqlite' | 'postgres';

export interface DialectCaps {
  name: DialectName;
  /** Column type of an auto-incrementing integer primary key. */
  autoIncrementPrimaryKey: 'integer' | 'bigserial';
}

export function dialectCaps(name: DialectName): DialectCaps {
  return name === 'sqlite' ? { name, autoIncrementPrimaryKey: 'integer' } : { name, autoIncrementPrimaryKey: 'bigserial' };
}

/** A unique constraint was violated (PostgreSQL 23505, SQLite SQLITE_CONSTRAINT_UNIQUE / PRIMARYKEY). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Which constraint or column a unique violation was about, as far as the driver says. */
export function uniqueViolationTarget(err: unknown): string {
  const e = err as { constraint?: string; message?: string } | null;
  return `${e?.constraint ?? ''} ${e?.message ?? ''}`;
}
