#!/usr/bin/env node
// Runs the test suite with node's test runner, then greps the logs of every
// app the tests started for every API key the tests were handed: none may appear.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const files = args.length ? args : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => join('test', f));

if (!process.env.TRACKGATE_TEST_DATABASE_URL) {
  console.log('NOTE: TRACKGATE_TEST_DATABASE_URL is not set: the PostgreSQL suite is SKIPPED and only SQLite is tested.');
  console.log('      Set it (e.g. postgres://postgres@127.0.0.1:5432/test) to run both; CI does.');
}

const runDir = mkdtempSync(join(tmpdir(), 'trackgate-run-'));
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TRACKGATE_TEST_RUN_DIR: runDir },
});

let leaked = 0;
let logs = 0;
let keyCount = 0;
if (existsSync(runDir)) {
  const entries = readdirSync(runDir);
  const keys = new Set();
  for (const f of entries.filter((f) => f.endsWith('.keys'))) {
    for (const k of readFileSync(join(runDir, f), 'utf8').split('\n')) if (k) keys.add(k);
  }
  keyCount = keys.size;
  for (const f of entries.filter((f) => f.endsWith('.log'))) {
    logs++;
    const text = readFileSync(join(runDir, f), 'utf8');
    for (const k of keys) {
      if (text.includes(k)) {
        leaked++;
        console.error(`LOG REDACTION FAILURE: key ${k.slice(0, 10)}... found in ${f}`);
      }
    }
  }
  rmSync(runDir, { recursive: true, force: true });
}
console.log(`log redaction check: ${keyCount} keys created by the tests, ${logs} app logs searched, ${leaked} leaks`);
process.exit(result.status === 0 && leaked === 0 ? 0 : 1);
