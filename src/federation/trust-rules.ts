/**
 * The rules of trust between a workload token and a service account (a federated credential), without
 * storage or HTTP: what a rule may say (ruleProblems) and whether a verified token satisfies it (ruleMatches).
 *
 * A rule names an issuer, the audience the token must carry, a subject (exact, or a prefix ending in `*`, as
 * cloud trust policies write it) and optional exact conditions on other claims. Shared issuers are the
 * danger: GitHub Actions has one issuer for every repository of every GitHub organization, so a rule that
 * pins that issuer and not the owner trusts every GitHub user on earth. Such rules are refused at creation.
 */

export interface TrustRule {
  issuer: string;
  audience: string;
  subject: string;
  /** Claim name → the exact value it must have. */
  conditions: Readonly<Record<string, string>>;
}

export interface RuleProblem {
  field: 'name' | 'issuer' | 'audience' | 'subject' | 'conditions';
  message: string;
}

/** GitHub Actions' one issuer (the pages offer it as a preset). */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/**
 * Issuers that serve many unrelated customers from one `iss`, with the claims that name the owner and the
 * subject prefix that does (the owner followed by its separator, so that `repo:acme` does not also cover
 * `repo:acme-evil/...`).
 */
const SHARED_ISSUERS: Readonly<Record<string, { name: string; ownerClaims: readonly string[]; ownerSubject: RegExp | null; example: string }>> = {
  [GITHUB_ACTIONS_ISSUER]: {
    name: 'GitHub Actions',
    ownerClaims: ['repository_owner', 'repository_owner_id', 'repository', 'repository_id'],
    ownerSubject: /^repo:[^/*:]+\/[^*]*$/,
    example: 'repo:acme/train:ref:refs/heads/main, repo:acme/train:*, or the condition repository_owner=acme',
  },
  'https://gitlab.com': {
    name: 'GitLab.com CI',
    ownerClaims: ['namespace_path', 'namespace_id', 'project_path', 'project_id'],
    ownerSubject: /^project_path:[^/*:]+\/[^*]*$/,
    example: 'project_path:acme/train:ref_type:branch:ref:main, project_path:acme/*, or the condition namespace_path=acme',
  },
  'https://app.terraform.io': {
    name: 'HCP Terraform',
    ownerClaims: ['terraform_organization_id', 'terraform_organization_name'],
    ownerSubject: /^organization:[^:*]+:[^*]*$/,
    example: 'organization:acme:project:ml:workspace:train:run_phase:apply, organization:acme:*, or the condition terraform_organization_name=acme',
  },
  'https://agent.buildkite.com': {
    name: 'Buildkite',
    ownerClaims: ['organization_slug', 'organization_id'],
    ownerSubject: /^organization:[^:*]+:[^*]*$/,
    example: 'organization:acme:pipeline:train:ref:refs/heads/main:commit:*, or the condition organization_slug=acme',
  },
  'https://accounts.google.com': {
    name: 'Google',
    ownerClaims: [],
    ownerSubject: null,
    example: "the exact subject (the service account's unique numeric id)",
  },
};

/** Claims a condition may not name: they are the rule's own fields, or checked for every token. */
const RESERVED_CLAIMS = new Set(['iss', 'aud', 'sub', 'exp', 'nbf', 'iat', 'jti']);
const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const MAX_CONDITIONS = 10;
const MAX_VALUE = 256;

/** The issuer as a shared one's name, or null. An issuer is compared exactly, as `iss` is. */
export function sharedIssuerName(issuer: string): string | null {
  return SHARED_ISSUERS[issuer]?.name ?? null;
}

/**
 * What is wrong with a rule, field by field (empty: it may be saved). `allowHttp`: development mode
 * (TRACKGATE_ALLOW_HTTP_ISSUERS), where a test issuer on loopback speaks plain HTTP.
 */
export function ruleProblems(rule: TrustRule, options: { allowHttp: boolean }): RuleProblem[] {
  const problems: RuleProblem[] = [];
  let url: URL | null = null;
  try {
    url = new URL(rule.issuer);
  } catch {
    problems.push({ field: 'issuer', message: 'must be a URL (the `iss` of the workload tokens, e.g. https://token.actions.githubusercontent.com)' });
  }
  if (url) {
    if (url.protocol !== 'https:' && !(options.allowHttp && url.protocol === 'http:')) problems.push({ field: 'issuer', message: 'must be an https:// URL' });
    else if (url.search || url.hash || url.username || url.password) problems.push({ field: 'issuer', message: 'must not carry a query, a fragment or credentials' });
    else if (url.href !== rule.issuer && url.href !== `${rule.issuer}/`) problems.push({ field: 'issuer', message: `must be written as the tokens' iss exactly (did you mean ${url.href.replace(/\/$/, '')}?)` });
  }
  const star = rule.subject.indexOf('*');
  if (rule.subject.length === 0) problems.push({ field: 'subject', message: 'must not be empty' });
  else if (star !== -1 && star !== rule.subject.length - 1) problems.push({ field: 'subject', message: 'may hold one `*`, as its last character only (a prefix match)' });
  const entries = Object.entries(rule.conditions);
  if (entries.length > MAX_CONDITIONS) problems.push({ field: 'conditions', message: `at most ${MAX_CONDITIONS} conditions` });
  for (const [claim, value] of entries) {
    if (!CLAIM_NAME.test(claim)) problems.push({ field: 'conditions', message: `"${claim.slice(0, 64)}" is not a claim name` });
    else if (RESERVED_CLAIMS.has(claim)) problems.push({ field: 'conditions', message: `"${claim}" is checked by the rule itself (issuer, audience, subject) or for every token; it cannot be a condition` });
    else if (typeof value !== 'string' || value.length === 0 || value.length > MAX_VALUE) problems.push({ field: 'conditions', message: `the value of "${claim}" must be a non-empty string of at most ${MAX_VALUE} characters` });
  }
  if (problems.length > 0) return problems;

  // What the rule pins beyond the issuer.
  const wildcard = star !== -1;
  if (wildcard && rule.subject.length === 1 && entries.length === 0) {
    problems.push({ field: 'subject', message: 'a subject of `*` with no condition trusts every token of the issuer: pin the workload (its exact subject or a prefix naming it)' });
  }
  const shared = SHARED_ISSUERS[rule.issuer];
  if (shared && wildcard) {
    // The prefix before the `*` is what must name the owner (and its separator).
    const prefix = rule.subject.slice(0, -1);
    const ownerPinned = (shared.ownerSubject !== null && shared.ownerSubject.test(prefix)) || shared.ownerClaims.some((c) => Object.hasOwn(rule.conditions, c));
    if (!ownerPinned) {
      problems.push({
        field: 'subject',
        message: `${shared.name} (${rule.issuer}) issues tokens for every one of its customers, so this rule would trust workloads of any of them: pin your own, e.g. ${shared.example}`,
      });
    }
  }
  return problems;
}

/** Whether `sub` matches a rule's subject: equal, or starting with what precedes a trailing `*`. */
export function subjectMatches(pattern: string, sub: string): boolean {
  return pattern.endsWith('*') ? sub.startsWith(pattern.slice(0, -1)) : sub === pattern;
}

/** A claim's value as a condition compares it: strings as they are, numbers and booleans written out; anything else never matches. */
function conditionValue(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}

/**
 * Whether a token's claims (already verified: signature, times) satisfy a rule: the same issuer, the
 * audience among its `aud`, the subject, and every condition exactly.
 */
export function ruleMatches(rule: TrustRule, claims: Readonly<Record<string, unknown>>): boolean {
  if (claims.iss !== rule.issuer) return false;
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.includes(rule.audience)) return false;
  if (typeof claims.sub !== 'string' || !subjectMatches(rule.subject, claims.sub)) return false;
  for (const [claim, expected] of Object.entries(rule.conditions)) {
    if (!Object.hasOwn(claims, claim) || conditionValue(claims[claim]) !== expected) return false;
  }
  return true;
}
