/**
 * `npm run demo`: trackgate with everything around it, from a clone, with no
 * configuration and nothing else running —
 *  - the gateway on a temporary SQLite database (removed on exit), loopback only;
 *  - the demo identity provider (demo/idp.ts), a sign-in page where you pick a demo user;
 *  - the demo tracking API (demo/tracking-api.ts) behind the gateway, showing who is calling;
 *  - two organizations with an SSO connection each, teams, group rules and a
 *    service account, made through the management API as an admin would (demo/seed.ts).
 * Ctrl-C stops it all and removes the temporary folder.
 *
 * Ports: 8080 (gateway), 8081 (IdP), 8082 (API), each moved to the next free
 * one when taken; DEMO_GATEWAY_PORT, DEMO_IDP_PORT and DEMO_API_PORT choose
 * them exactly (the test passes free ones). `npm start` runs none of this: it
 * lives outside src/ and the build.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTrackgate } from '../src/app.ts';
import type { Trackgate } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/log/logger.ts';
import { startDemoIdp } from './idp.ts';
import type { DemoIdp } from './idp.ts';
import { DEMO_USERS, seed } from './seed.ts';
import { startDemoApi } from './tracking-api.ts';
import type { DemoApi } from './tracking-api.ts';

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The port named by `variable` exactly, else the first free one from `preferred` up that is not already taken by the demo. */
async function choosePort(variable: string, preferred: number, taken: number[]): Promise<number> {
  const given = process.env[variable];
  if (given !== undefined && given !== '') {
    const port = Number(given);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${variable}=${given}: must be a port number (1-65535)`);
    return port;
  }
  for (let port = preferred; port < preferred + 100; port++) {
    if (!taken.includes(port) && (await canListen(port))) return port;
  }
  throw new Error(`no free port from ${preferred} to ${preferred + 99}; set ${variable}`);
}

const tmp = mkdtempSync(join(tmpdir(), 'trackgate-demo-'));
let idp: DemoIdp | null = null;
let api: DemoApi | null = null;
let gw: Trackgate | null = null;
let stopping = false;

async function stop(code: number): Promise<never> {
  if (stopping) {
    // A second Ctrl-C: out at once, the folder still removed (a process still writing there is ending with us).
    rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  }
  stopping = true;
  // Each part is closed even when another fails, and the folder is removed in every case.
  for (const close of [() => gw?.close(), () => api?.close(), () => idp?.close()]) {
    try {
      await close();
    } catch (err) {
      console.error('while stopping:', err instanceof Error ? err.message : err);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  console.log(`\ntrackgate demo stopped; ${tmp} removed.`);
  process.exit(code);
}

// A second Ctrl-C while stopping ends the process at once (stop() exits when called again).
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  const gatewayPort = await choosePort('DEMO_GATEWAY_PORT', 8080, []);
  const idpPort = await choosePort('DEMO_IDP_PORT', 8081, [gatewayPort]);
  const apiPort = await choosePort('DEMO_API_PORT', 8082, [gatewayPort, idpPort]);
  const publicUrl = `http://127.0.0.1:${gatewayPort}`;
  const apiUrl = `http://127.0.0.1:${apiPort}`;

  idp = await startDemoIdp({
    port: idpPort,
    users: DEMO_USERS,
    clients: [
      { clientId: 'trackgate-acme', redirectUris: [`${publicUrl}/login/callback`] },
      { clientId: 'trackgate-globex', redirectUris: [`${publicUrl}/login/callback`] },
    ],
  });
  api = await startDemoApi({ port: apiPort, gatewayUrl: publicUrl, audience: apiUrl });

  const logFile = join(tmp, 'trackgate.log');
  const config = loadConfig({
    // No configuration from the environment or config/: the demo is the same on every machine.
    env: {},
    configDir: join(tmp, 'no-config'),
    overrides: {
      host: '127.0.0.1',
      port: gatewayPort,
      publicUrl,
      databaseUrl: `sqlite:${join(tmp, 'trackgate.db')}`,
      dataDir: tmp,
      upstreamUrl: apiUrl,
      assertionAudience: apiUrl,
      // The demo IdP speaks plain HTTP on loopback: development only, never in production.
      allowHttpIssuers: true,
      logLevel: 'info',
      logFile,
      lastUsedFlushMs: 1000,
    },
  });
  gw = await createTrackgate(config, { logger: createLogger({ level: config.logLevel, file: logFile }) });
  await gw.listen();

  const s = await seed(gw, { publicUrl, issuer: idp.issuer });

  const line = (label: string, value: string) => `  ${label.padEnd(16)}${value}`;
  console.log(`
trackgate demo — everything on loopback, data in ${tmp} (removed on exit)

${line('gateway', publicUrl)}
${line('demo IdP', idp.issuer)}
${line('demo API', `${apiUrl}  (behind the gateway: TRACKGATE_UPSTREAM_URL)`)}
${line('log', logFile)}

Sign in through SSO: open ${publicUrl}/login and enter an email, then pick that user on the IdP's page:
${s.people.map((p) => `  ${p.email.padEnd(25)}${p.what}`).join('\n')}
  (acme: implicit flow, form_post; globex: code flow with PKCE. Teams come from the IdP's groups.)
Signed in, open ${publicUrl}/whoami: the demo API shows who you are to it.

The instance operator (${s.operatorEmail}, admin of acme) signs in with a one-time login link (15 minutes):
  ${s.loginLink}

Call the demo API through the gateway with the operator's key (it shows the identity it received, and the verified assertion):
  curl -u api:${s.operatorKey} ${publicUrl}/whoami
A service account of team ml, attributing its run to carol:
  curl -u api:${s.serviceAccountKey} -H 'X-WANDB-USERNAME: carol' ${publicUrl}/whoami
The tracking client: WANDB_BASE_URL=${publicUrl} WANDB_API_KEY=${s.operatorKey} wandb login

trackgate demo ready — Ctrl-C stops everything.`);
} catch (err) {
  // Stopped while starting (Ctrl-C during the seeding fails its requests): the stop under way finishes the job.
  if (!stopping) {
    console.error('the demo could not start:', err instanceof Error ? err.message : err);
    await stop(1);
  }
}
