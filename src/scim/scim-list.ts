import SCIMMY from 'scimmy';
import { AppError } from '../errors/app-error.ts';
import { LIST_RESPONSE_SCHEMA } from './scim-schemas.ts';

/**
 * The list side of SCIM shared by /Users and /Groups (RFC 7644 §3.4.2): reading the query of a list
 * request, the ListResponse message, and the one kind of filter trackgate answers (equality, joined by
 * `and`). No HTTP here: the routes pass `req.query` as a plain record.
 */

/** What a list request asks for, read from its query (names matched case-insensitively: IdPs vary). */
export interface ListQuery {
  /** 1-based index of the first result (RFC 7644 §3.4.2.4: below 1 is read as 1). */
  startIndex: number;
  /** How many results at most; 0 asks for totalResults only. */
  count: number;
  /** The filter expression as sent, or undefined (absent or blank). */
  filter: string | undefined;
  /** `attributes` / `excludedAttributes`: attribute names, lower-case, dotted for sub-attributes. */
  attributes: string[];
  excludedAttributes: string[];
}

export interface ListLimits {
  /** When `count` is absent. */
  defaultCount: number;
  /** The most results one page holds (ServiceProviderConfig's filter.maxResults): a larger count is lowered to it. */
  maxCount: number;
}

export const DEFAULT_LIST_LIMITS: ListLimits = { defaultCount: 100, maxCount: 200 };

/** The value of a query parameter whatever its spelling (`startIndex`, `startindex`, `STARTINDEX`). */
function param(query: Record<string, unknown>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(query)) {
    if (key.toLowerCase() !== wanted) continue;
    // A parameter sent twice: Express's simple parser gives an array; the first one counts.
    const v: unknown = Array.isArray(value) ? (value as unknown[])[0] : value;
    return typeof v === 'string' ? v : undefined;
  }
  return undefined;
}

function integerParam(query: Record<string, unknown>, name: string): number | undefined {
  const raw = param(query, name);
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\s*[-+]?\d{1,15}\s*$/.test(raw)) throw new AppError('scim_invalid_value', `${name} must be an integer, not "${raw.slice(0, 40)}"`);
  return Number(raw);
}

/** `urn:…:core:2.0:User:` or `…:Group:` before an attribute name (the fully qualified form RFC 7644 §3.10 allows). */
const CORE_SCHEMA_PREFIX = /^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/;

function namesParam(query: Record<string, unknown>, name: string): string[] {
  const raw = param(query, name);
  if (!raw) return [];
  return raw
    .split(',')
    .map((s) => s.trim().toLowerCase().replace(CORE_SCHEMA_PREFIX, ''))
    .filter((s) => s !== '');
}

/**
 * Reads a list request's query. `startIndex` below 1 is 1 and a negative `count` is 0 (RFC 7644 §3.4.2.4
 * says so; IdPs do not send them, but a strict 400 would buy nothing); a count above the limit is lowered
 * to it; a value that is not an integer is a 400 invalidValue.
 */
export function readListQuery(query: Record<string, unknown>, limits: ListLimits = DEFAULT_LIST_LIMITS): ListQuery {
  const startIndex = Math.max(1, integerParam(query, 'startIndex') ?? 1);
  const count = Math.min(limits.maxCount, Math.max(0, integerParam(query, 'count') ?? limits.defaultCount));
  const filter = param(query, 'filter');
  return {
    startIndex,
    count,
    filter: filter === undefined || filter.trim() === '' ? undefined : filter,
    attributes: namesParam(query, 'attributes'),
    excludedAttributes: namesParam(query, 'excludedAttributes'),
  };
}

export interface ListResponse<T> {
  schemas: [typeof LIST_RESPONSE_SCHEMA];
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  Resources: T[];
}

/** A ListResponse message (RFC 7644 §3.4.2): integers, and `Resources: []` when there are none (Entra ID and Okta both expect the key). */
export function listResponse<T>(resources: T[], totalResults: number, startIndex: number): ListResponse<T> {
  return { schemas: [LIST_RESPONSE_SCHEMA], totalResults, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** One `attribute eq value` of an equality filter. */
export interface FilterTerm {
  /** The attribute as the caller's `allowed` list spells it (`userName`, `emails.value`, `emails.type`). */
  attribute: string;
  /** The compared value, as the string sent (unquoted `jyoung`, `True` or `00123` arrive as that text). */
  value: string;
}

const invalidFilter = (message: string) => new AppError('scim_invalid_filter', message);

/**
 * Whether an attribute path or filter names `__proto__`, `constructor` or `prototype` outside its quoted
 * values. scimmy's Filter builds its parse by assigning each segment of an attribute path as an object key:
 * `__proto__.x eq "y"` wrote Object.prototype.x of the whole process (every organization's requests saw it,
 * and `schemas` put there broke every later POST), `constructor.x` wrote Object.x. No SCIM attribute has
 * these names, so whatever names them is refused before scimmy reads it (filters here, PATCH paths in
 * scim-patch.ts).
 */
export function namesUnsafeAttribute(expression: string): boolean {
  const unquoted = expression.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return /(?:^|[^\w$])(?:__proto__|constructor|prototype)(?![\w$])/i.test(unquoted);
}

/**
 * Quotes the unquoted comparison values of a filter (Entra ID sends `externalId eq 00123`,
 * `displayName eq Sales`): scimmy reads a bare `True` as a boolean (and, wrongly, false), `00123` as the
 * number 123 and `a@b` not at all, so every compared value becomes the string it was sent as. Quoted
 * parts (escaped quotes included) are left as they are; `pr` takes no value and is untouched.
 */
function quoteBareValues(expression: string): string {
  return expression
    .split(/("(?:[^"\\]|\\.)*")/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/\b(eq|ne|co|sw|ew|gt|ge|lt|le)(\s+)(?!")([^\s()"[\]]+)/gi, (_m, op: string, sp: string, v: string) => `${op}${sp}"${v}"`)))
    .join('');
}

/**
 * Parses a filter into equality terms, all of which must hold (`and`). The only filters IdPs send to
 * find a resource are `eq` and `and` (Okta: `userName eq "…"`; Entra ID: `externalId eq jyoung`, values
 * possibly unquoted, `emails[type eq "work"].value eq "…"`), so that is all trackgate answers: anything
 * else (`or`, `not`, `co`, `sw`, `pr`, `gt`…, or an attribute not in `allowed`) is a 400 invalidFilter
 * rather than a wrong answer. `allowed`: the attribute paths accepted, sub-attributes dotted
 * (`emails.value`); a filter inside brackets (`emails[type eq "work"].value`) is read as the dotted
 * terms it contains. Attribute names match case-insensitively; `schemaId:` before a name is dropped
 * (the fully qualified form `urn:…:User:userName`).
 */
export function parseEqualityFilter(expression: string, allowed: readonly string[], schemaId?: string): FilterTerm[] {
  let parsed: Array<Record<string, unknown>>;
  const quoted = quoteBareValues(expression);
  if (namesUnsafeAttribute(quoted)) throw invalidFilter('the filter names no attribute trackgate supports');
  try {
    parsed = [...new SCIMMY.Types.Filter(quoted)] as Array<Record<string, unknown>>;
  } catch (err) {
    // scimmy's own messages name the unexpected token; a TypeError from inside its parser says nothing useful.
    const detail = err instanceof SCIMMY.Types.Error || (err instanceof Error && /^(Unexpected|Expected)/.test(err.message)) ? `: ${err.message}` : '';
    throw invalidFilter(`the filter cannot be parsed${detail}`);
  }
  if (parsed.length !== 1) throw invalidFilter('only "eq" comparisons joined by "and" are supported ("or" is not)');
  const byLower = new Map(allowed.map((a) => [a.toLowerCase(), a]));
  const prefix = schemaId ? `${schemaId.toLowerCase()}:` : undefined;
  const terms: FilterTerm[] = [];
  const visit = (node: Record<string, unknown>, path: string) => {
    for (const [rawKey, spec] of Object.entries(node)) {
      let key = rawKey.toLowerCase();
      if (prefix && path === '' && key.startsWith(prefix)) key = key.slice(prefix.length);
      const full = path ? `${path}.${key}` : key;
      if (Array.isArray(spec)) {
        // One comparison is [op, value]; the same attribute twice is an array of them.
        const comparisons = Array.isArray(spec[0]) ? (spec as unknown[][]) : [spec as unknown[]];
        for (const c of comparisons) {
          const attribute = byLower.get(full);
          if (!attribute) throw invalidFilter(`filtering on "${full}" is not supported (supported: ${allowed.join(', ')})`);
          if (c.length !== 2 || typeof c[0] !== 'string' || c[0].toLowerCase() !== 'eq') {
            throw invalidFilter(`only "eq" comparisons are supported (${full} ${c.map((x) => String(x)).join(' ')})`);
          }
          const v = c[1];
          if (v !== null && typeof v === 'object') throw invalidFilter(`the value compared with ${full} must be a string`);
          terms.push({ attribute, value: String(v) });
        }
      } else if (spec !== null && typeof spec === 'object') {
        visit(spec as Record<string, unknown>, full);
      } else {
        throw invalidFilter(`the filter cannot be parsed near "${full}"`);
      }
    }
  };
  const [only] = parsed;
  if (only) visit(only, '');
  if (terms.length === 0) throw invalidFilter('the filter compares nothing');
  return terms;
}

/** Attributes every answer carries whatever `attributes` / `excludedAttributes` say (RFC 7643 §7, returned "always"). */
const ALWAYS_RETURNED = new Set(['schemas', 'id', 'meta']);

/**
 * Applies `attributes` (only these) or `excludedAttributes` (all but these) to a resource's top-level
 * attributes (RFC 7644 §3.4.2.5): `excludedAttributes=members` is how Entra ID reads big groups.
 * A sub-attribute path (`name.givenName`) selects or drops its top-level attribute's part.
 */
export function selectAttributes<T extends Record<string, unknown>>(resource: T, query: Pick<ListQuery, 'attributes' | 'excludedAttributes'>): Partial<T> {
  if (query.attributes.length === 0 && query.excludedAttributes.length === 0) return resource;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    const lower = key.toLowerCase();
    if (ALWAYS_RETURNED.has(lower)) {
      out[key] = value;
      continue;
    }
    if (query.attributes.length > 0) {
      if (query.attributes.includes(lower)) out[key] = value;
      else {
        const subs = query.attributes.filter((a) => a.startsWith(`${lower}.`)).map((a) => a.slice(lower.length + 1));
        if (subs.length && value !== null && typeof value === 'object') out[key] = pick(value, subs, true);
      }
    } else if (!query.excludedAttributes.includes(lower)) {
      const subs = query.excludedAttributes.filter((a) => a.startsWith(`${lower}.`)).map((a) => a.slice(lower.length + 1));
      out[key] = subs.length && value !== null && typeof value === 'object' ? pick(value, subs, false) : value;
    }
  }
  return out as Partial<T>;
}

/** Keeps (or drops) the named sub-attributes of a complex value, or of each element of a multi-valued one. */
function pick(value: object, names: string[], keep: boolean): unknown {
  if (Array.isArray(value)) return value.map((v: unknown) => (v !== null && typeof v === 'object' ? pick(v, names, keep) : v));
  return Object.fromEntries(Object.entries(value).filter(([k]) => names.includes(k.toLowerCase()) === keep));
}
