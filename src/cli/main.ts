import { Command, InvalidArgumentError } from 'commander';
import type { z } from 'zod';
import { closeCore, createCore, createTrackgate, VERSION } from '../app.ts';
import type { OrgRole } from '../auth/principal.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { readFileSync } from 'node:fs';
import { SecretBox, SecretKeyMismatchError } from '../crypto/secret-box.ts';
import { ResealError, resealSecrets } from './rotate-secret-key.ts';
import { announcePublicUrl, publicUrlNote, resolvePublicUrl } from '../instance/public-url.ts';
import type { ResolvedPublicUrl } from '../instance/public-url.ts';
import type { Config } from '../config/config.ts';
import { AppError } from '../errors/app-error.ts';
import { fields } from '../http/validation.ts';
import { createLogger } from '../log/logger.ts';
import { ProvisioningService } from '../users/provisioning.ts';
import { LOGIN_LINK_TTL_TEXT, LoginLinksService } from '../web/login-links.service.ts';

function validated<S extends z.ZodType>(schema: S, what: string) {
  return (value: string): z.output<S> => {
    const r = schema.safeParse(value);
    if (!r.success) throw new InvalidArgumentError(`${what} ${r.error.issues[0]?.message ?? 'is invalid'}`);
    return r.data;
  };
}

function config(): Config {
  return loadConfig();
}

/** CLI commands log only warnings to stderr, so that stdout holds just their answer. */
function cliLogger(cfg: Config) {
  return createLogger({ level: cfg.logLevel === 'silent' ? 'silent' : 'warn', file: cfg.logFile, fd: 2 });
}

async function withProvisioning<T>(fn: (p: ProvisioningService, links: LoginLinksService, publicUrl: ResolvedPublicUrl) => Promise<T>): Promise<T> {
  const cfg = config();
  const core = await createCore(cfg, { logger: cliLogger(cfg) });
  try {
    // Links point at the running server, not at this process's own guess (see src/instance/public-url.ts).
    const publicUrl = await resolvePublicUrl(core.store.repos.instanceSettings, cfg);
    return await fn(new ProvisioningService(core.store, core.users, core.keys, core.audit, core.invalidator), new LoginLinksService(core.store, core.audit, publicUrl.url), publicUrl);
  } finally {
    await closeCore(core);
  }
}

const program = new Command();
program.name('trackgate').description('trackgate identity gateway').version(VERSION);

program
  .command('serve')
  .description('run the gateway (applies migrations first)')
  .action(async () => {
    const cfg = config();
    const gw = await createTrackgate(cfg);
    const { port } = await gw.listen();
    // What the CLI's login links will use: the configured URL, or this server's actual port.
    const announced = cfg.publicUrlConfigured ? cfg.publicUrl : `http://localhost:${port}`;
    await announcePublicUrl(gw.core.store.repos.instanceSettings, announced).catch((err: unknown) => gw.core.logger.warn({ err }, 'could not record the public URL for the CLI'));
    gw.core.logger.info({ port, host: cfg.host, public_url: cfg.publicUrl, database: cfg.databaseUrl.startsWith('sqlite:') ? cfg.databaseUrl : 'postgres', upstream: cfg.upstreamUrl ?? null }, 'trackgate listening');
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      gw.core.logger.info({ signal }, 'shutting down: finishing in-flight requests');
      gw.close().then(
        () => process.exit(0),
        (err: unknown) => {
          gw.core.logger.error({ err }, 'error during shutdown');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('migrate')
  .description('apply database migrations and exit')
  .action(async () => {
    const cfg = config();
    const core = await createCore(cfg, { logger: cliLogger(cfg) });
    await closeCore(core);
    process.stdout.write('database is up to date\n');
  });

program
  .command('bootstrap')
  .description('create the first organization and its admin (also instance operator); prints the admin\'s API key and a one-time login link')
  .requiredOption('--email <email>', 'the admin\'s email', validated(fields.email, '--email'))
  .requiredOption('--org <slug>', 'the organization\'s slug', validated(fields.slug, '--org'))
  .option('--plan <plan>', 'standard or enterprise', validated(fields.plan, '--plan'), 'standard')
  .option('--name <name>', 'the organization\'s display name')
  .option('--username <username>', 'the admin\'s username (default: from the email)', validated(fields.entityName, '--username'))
  .option('--json', 'print JSON')
  .action(async (opts: { email: string; org: string; plan: 'standard' | 'enterprise'; name?: string; username?: string; json?: boolean }) => {
    const { r, publicUrl } = await withProvisioning(async (p, links, publicUrl) => {
      const created = await p.bootstrap({ email: opts.email, org: opts.org, plan: opts.plan, orgName: opts.name, username: opts.username });
      const link = await links.issue({ orgId: created.org.id, userId: created.user.id });
      return { r: { ...created, login_url: link.url, login_url_expires_at: link.expires_at, public_url: publicUrl.url, public_url_source: publicUrl.source }, publicUrl };
    });
    if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else {
      process.stdout.write(
        `Created organization "${r.org.slug}" (${r.org.plan}) and admin "${r.user.username}" <${r.user.email}>.\n\n` +
          `API key (shown once; keep it secret):\n\n  ${r.api_key}\n\n` +
          `Use it as WANDB_API_KEY, or: curl -u api:<key> ${r.public_url}/gateway/v1/me\n\n` +
          `One-time login link for the web pages (works once, for ${LOGIN_LINK_TTL_TEXT}; trackgate login-link makes another):\n\n  ${r.login_url}\n` +
          (publicUrlNote(publicUrl) ? `\n${publicUrlNote(publicUrl)}` : ''),
      );
    }
  });

program
  .command('login-link')
  .description(`print a one-time login link (valid ${LOGIN_LINK_TTL_TEXT}) that signs a person into the web pages`)
  .requiredOption('--email <email>', 'the person\'s email', validated(fields.email, '--email'))
  .option('--json', 'print JSON')
  .action(async (opts: { email: string; json?: boolean }) => {
    const { link, publicUrl } = await withProvisioning(async (_p, links, publicUrl) => ({ link: await links.issueForEmail(opts.email), publicUrl }));
    if (opts.json) process.stdout.write(JSON.stringify({ login_url: link.url, expires_at: link.expires_at, user: link.user, org: link.org, public_url_source: publicUrl.source }, null, 2) + '\n');
    else process.stdout.write(`One-time login link for ${link.user.username} <${link.user.email}> in "${link.org}" (works once, until ${link.expires_at}):\n\n  ${link.url}\n${publicUrlNote(publicUrl) ? `\n${publicUrlNote(publicUrl)}` : ''}`);
  });

program
  .command('rotate-secret-key')
  .description('re-seal the secrets this database holds (signing keys, SSO client secrets) from an old secret key to the current one (TRACKGATE_SECRET_KEY, or the data folder\'s secret.key). Stop every instance first; everyone signs in again afterwards')
  .requiredOption('--from-file <path>', 'a file holding the old secret key (not on the command line, where ps and shell history would keep it)')
  .option('--json', 'print JSON')
  .action(async (opts: { fromFile: string; json?: boolean }) => {
    const cfg = config();
    let old: string;
    try {
      old = readFileSync(opts.fromFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`--from-file ${opts.fromFile}: ${(err as Error).message}`);
    }
    if (!/^[0-9a-fA-F]{64}$/.test(old) && !/^[A-Za-z0-9+/_-]{43}=?$/.test(old)) throw new ConfigError(`--from-file ${opts.fromFile}: does not hold a secret key (64 hex characters or the base64 of 32 bytes)`);
    const core = await createCore(cfg, { logger: cliLogger(cfg) });
    try {
      const r = await resealSecrets(core.store, new SecretBox(old, opts.fromFile), core.secretBox);
      if (opts.json) process.stdout.write(JSON.stringify({ resealed: r.resealed, already_new: r.alreadyNew }) + '\n');
      else process.stdout.write(`Re-sealed ${r.resealed} secret(s) with the current key${r.alreadyNew ? ` (${r.alreadyNew} already were)` : ''}. Start the instances with the new key; browser sessions have ended.\n`);
    } finally {
      await closeCore(core);
    }
  });

const users = program.command('users').description('manage users');
users
  .command('create')
  .description('create a user in an organization')
  .requiredOption('--org <slug>', 'organization', validated(fields.slug, '--org'))
  .requiredOption('--email <email>', 'email', validated(fields.email, '--email'))
  .requiredOption('--username <username>', 'username', validated(fields.entityName, '--username'))
  .option('--role <role>', 'admin, member or viewer', validated(fields.role, '--role'), 'member')
  .option('--with-key', 'also create a personal API key and print it')
  .option('--json', 'print JSON')
  .action(async (opts: { org: string; email: string; username: string; role: OrgRole; withKey?: boolean; json?: boolean }) => {
    const r = await withProvisioning((p) => p.createUser({ org: opts.org, email: opts.email, username: opts.username, role: opts.role, withKey: opts.withKey === true }));
    if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else {
      process.stdout.write(`Created user "${r.user.username}" <${r.user.email}> (${r.user.role}) in "${r.org}".\n`);
      if (r.api_key) process.stdout.write(`\nAPI key (shown once; keep it secret):\n\n  ${r.api_key}\n`);
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof AppError) {
    // The catalogue's code, not an HTTP status: the CLI is not behind HTTP.
    process.stderr.write(`trackgate: ${err.message} [${err.code}]\n`);
    // The operator at the terminal is told what the driver said (a client never is: src/db/unavailable.ts).
    if (err.code === 'unavailable' && err.cause instanceof Error) process.stderr.write(`  cause: ${err.cause.message}\n`);
    process.exit(1);
  }
  if (err instanceof ConfigError || err instanceof SecretKeyMismatchError || err instanceof ResealError) {
    process.stderr.write(`trackgate: ${err.message}\n`);
    process.exit(78);
  }
  process.stderr.write(`trackgate: ${err instanceof Error ? (err.stack ?? String(err)) : String(err)}\n`);
  process.exit(1);
});
