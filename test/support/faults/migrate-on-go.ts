/**
 * A process that opens the database of TRACKGATE_DATABASE_URL, says "ready" on stdout, and migrates it
 * when a line arrives on stdin: several of them, told at once, migrate at the same instant (a real
 * process start spreads them by its module loading). Prints the migrations it applied as JSON, or the
 * error, and exits 0 or 1.
 */
import { createInterface } from 'node:readline';
import { migrateToLatest, openDatabase } from '../../../src/db/database.ts';

const database = openDatabase(process.env.TRACKGATE_DATABASE_URL ?? '');
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
lines.once('line', () => {
  lines.close();
  migrateToLatest(database).then(
    async (applied) => {
      process.stdout.write(JSON.stringify({ applied }) + '\n');
      await database.close();
    },
    async (err: unknown) => {
      process.stdout.write(JSON.stringify({ error: String(err) }) + '\n');
      await database.close();
      process.exitCode = 1;
    },
  );
});
