// `npm run build` (and `npm start`, through prestart): compiles src/ to dist/ (or `--out <folder>`) with tsc and copies the
// files tsc does not emit (static assets, the worker's .mjs entry). The service runs the compiled
// JavaScript: no TypeScript loader in the process, which saves a loader thread (a V8 isolate) in the
// main thread and another in the management worker, ~50 MB of resident memory, and start-up time.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const outFlag = process.argv.indexOf('--out');
const outArg = outFlag === -1 ? 'dist' : process.argv[outFlag + 1];
// The output folder is emptied first: never the project itself or anything above it.
if (!outArg || outArg.startsWith('-')) throw new Error('--out needs a folder');
const dist = resolve(root, outArg);
const up = relative(dist, root);
if (up === '' || !up.startsWith('..') || dist === src || dist.startsWith(src + sep)) throw new Error(`--out ${outArg}: not a folder to build into`);
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dist], { stdio: 'inherit' });

/** Everything under src/ that is not TypeScript: the pages' static files and the worker's entry. */
function copyAssets(dir) {
  for (const name of readdirSync(dir)) {
    const from = join(dir, name);
    if (statSync(from).isDirectory()) copyAssets(from);
    else if (!name.endsWith('.ts')) cpSync(from, join(dist, relative(src, from)));
  }
}
copyAssets(src);
