// The management worker's entry point. From the compiled build (dist/, what `npm start` runs) it loads
// worker.js. From the TypeScript sources it loads worker.ts; a worker thread does not get the main
// thread's TypeScript loader (tsx, registered by bin/trackgate or `--import tsx`), so tsx is
// registered here for this thread when a .ts module cannot be loaded yet. The retry uses another
// URL: the failed load of the first one stays cached.
import { existsSync } from 'node:fs';

const compiled = new URL('./worker.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const target = new URL('./worker.ts', import.meta.url).href;
  try {
    await import(target);
  } catch (err) {
    if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
    const { register } = await import('tsx/esm/api');
    register();
    await import(`${target}?tsx`);
  }
}
