import type { InstanceSettingsRepository } from './instance-settings.repository.ts';

const SETTING = 'public_url';

/** Where a URL printed by the CLI came from, so that it can say which one it assumed. */
export type PublicUrlSource = 'configured' | 'server' | 'assumed';

export interface ResolvedPublicUrl {
  url: string;
  source: PublicUrlSource;
  /** When the server announced it (source 'server'). */
  announcedAt?: string;
}

/**
 * `trackgate serve` records the public URL it serves under (TRACKGATE_PUBLIC_URL, or localhost and the port
 * it actually listens on), so that the CLI, run with another environment (no TRACKGATE_PORT, say), prints
 * login links that reach the running server instead of its own guess.
 */
export async function announcePublicUrl(repo: InstanceSettingsRepository, url: string): Promise<void> {
  await repo.put(SETTING, url, new Date().toISOString());
}

/**
 * The public URL for links the CLI prints: the configured one when TRACKGATE_PUBLIC_URL (or the config
 * file) sets it; else the one the server last announced; else the default it would use, said to be assumed.
 */
export async function resolvePublicUrl(repo: InstanceSettingsRepository, config: { publicUrl: string; publicUrlConfigured: boolean }): Promise<ResolvedPublicUrl> {
  if (config.publicUrlConfigured) return { url: config.publicUrl, source: 'configured' };
  const announced = await repo.get(SETTING);
  if (announced) return { url: announced.value, source: 'server', announcedAt: announced.updated_at };
  return { url: config.publicUrl, source: 'assumed' };
}

/** One line saying where a URL came from, for the CLI's human output; empty when it was configured. */
export function publicUrlNote(resolved: ResolvedPublicUrl): string {
  if (resolved.source === 'server') return `(links use ${resolved.url}, the URL the server announced at ${resolved.announcedAt ?? '?'}; set TRACKGATE_PUBLIC_URL to choose another)\n`;
  if (resolved.source === 'assumed') return `(links use ${resolved.url}, assumed: TRACKGATE_PUBLIC_URL is not set and no server has run on this database yet)\n`;
  return '';
}
