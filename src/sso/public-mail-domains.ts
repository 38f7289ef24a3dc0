import { createRequire } from 'node:module';

/**
 * Domains of public mail providers (gmail.com, outlook.com, ...): their
 * addresses belong to many people, not to one organization, so no
 * organization may claim one for home realm discovery or email linking.
 *
 * The list is the `email-providers` package's (~8 800 domains, no install
 * script, no network at run time), plus a few large providers it lacks. It is
 * matched exactly, not by parent domain: the list holds second-level
 * registries such as com.ar, and walking up would refuse every company there.
 * Loaded on first use, in the control plane only.
 */
const EXTRA = ['fastmail.com', 'fastmail.fm', 'tutanota.com', 'tuta.io', 'pm.me', 'duck.com', 'skiff.com', 'hey.com', 'outlook.de', 'outlook.fr'];

let domains: Set<string> | null = null;

function load(): Set<string> {
  if (!domains) {
    const list = createRequire(import.meta.url)('email-providers/all.json') as string[];
    domains = new Set([...list, ...EXTRA].map((d) => d.toLowerCase()));
  }
  return domains;
}

export function isPublicMailDomain(domain: string): boolean {
  return load().has(domain.trim().toLowerCase().replace(/\.$/, ''));
}
