// The management worker's entry point. A worker thread does not get the main thread's TypeScript
// loader (tsx, registered by bin/trackgate or `--import tsx`), so it is registered here for this
// thread when a .ts module cannot be loaded yet. The retry uses another URL: the failed load of the
// first one stays cached.
const target = new URL('./worker.ts', import.meta.url).href;
try {
  await import(target);
} catch (err) {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  const { register } = await import('tsx/esm/api');
  register();
  await import(`${target}?tsx`);
}
