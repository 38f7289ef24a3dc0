import type { Request } from 'express';
import type { z } from 'zod';
import { errors } from '../errors/app-error.ts';
import { CSRF_FIELD } from '../http/csrf.ts';
import { parse } from '../http/validation.ts';

/**
 * The form adapter: the one place where an HTML form becomes the input of an
 * API schema. The pages validate with the SAME zod schemas as the API routes
 * (so a bad field gets the same message on both); a form can only post flat
 * strings, so before the schema sees it each field is converted by what the
 * schema expects of it:
 *
 * - only the schema's fields are taken (not csrf_token, not page-only fields);
 * - an empty box is "not given" (undefined), or "none" (null) where the
 *   schema accepts null (a policy left empty has no limit);
 * - a number field: the digits as a number; anything else is passed as typed,
 *   for the schema to refuse with its message;
 * - a boolean field is a checkbox (sent as "on" when ticked, not sent when
 *   not) or a true/false choice: "on" and "true" are true, anything else,
 *   absent included, false;
 * - a list of strings: items separated by commas, spaces or new lines;
 * - a list of objects: a textarea, one item per line, read by the caller's
 *   line reader (`lines`, e.g. parseGroupRules).
 */

/** Form fields as strings (urlencoded bodies are flat; anything else is ignored). */
export function formOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((req.body ?? {}) as Record<string, unknown>)) if (typeof v === 'string' && k !== CSRF_FIELD) out[k] = v;
  return out;
}

type Def = { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; element?: z.core.$ZodType };
const defOf = (s: z.core.$ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** What a field's schema takes once its optional/default/nullable/pipe wrappers are off, and whether null is allowed. */
function kindOf(schema: z.core.$ZodType): { type: string; element: string | null; nullable: boolean } {
  let s = schema;
  let nullable = false;
  for (;;) {
    const d = defOf(s);
    if (d.type === 'nullable') nullable = true;
    if ((d.type === 'optional' || d.type === 'default' || d.type === 'nullable' || d.type === 'prefault') && d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return { type: d.type, element: d.type === 'array' && d.element ? kindOf(d.element).type : null, nullable };
  }
}

/** The items of a list box: separated by commas, spaces or new lines. */
function items(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A form's fields as the input `schema` expects (see above); the schema then validates it. */
export function formInput(schema: z.ZodObject<z.ZodRawShape>, form: Record<string, string>, lines: Record<string, (text: string) => unknown[]> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(schema.shape)) {
    const { type, element, nullable } = kindOf(field);
    const v = form[name];
    if (type === 'boolean') {
      out[name] = v === 'on' || v === 'true';
      continue;
    }
    if (v === undefined) continue;
    if (type === 'array') {
      const reader = lines[name];
      if (reader) out[name] = reader(v);
      else if (element !== 'object' && v.trim() !== '') out[name] = items(v);
      continue;
    }
    if (v.trim() === '') {
      if (nullable) out[name] = null;
      continue;
    }
    out[name] = type === 'number' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
  }
  return out;
}

/** A posted form, converted (formInput) and validated by the API's schema: a 400 names each bad field as the API does. */
export function parseForm<S extends z.ZodObject>(schema: S, req: Request, lines?: Record<string, (text: string) => unknown[]>): z.output<S> {
  return parse(schema, formInput(schema, formOf(req), lines), 'form');
}

/**
 * `group,team,role` per line; the group may itself contain commas (the last two fields are team and
 * role). Only lines and fields: what they say is the API schema's to judge (a misspelt role gets the
 * API's message, a line without a role is refused as the API refuses a rule without one).
 */
export function parseGroupRules(text: string | undefined): Array<{ group: string; team: string; role?: string }> {
  const rules: Array<{ group: string; team: string; role?: string }> = [];
  for (const [i, line] of (text ?? '').split(/\r?\n/).entries()) {
    if (!line.trim()) continue;
    const parts = line.split(',').map((p) => p.trim());
    if (parts.length < 2) throw errors.validation(`group rules, line ${i + 1}: write "group,team,role" (role: admin, member or viewer)`, [{ field: 'group_roles', code: 'invalid_format', message: `line ${i + 1}: write "group,team,role"` }]);
    if (parts.length === 2) rules.push({ group: parts[0] ?? '', team: parts[1] ?? '' });
    // The group is everything before the team, commas and inner spaces kept.
    else rules.push({ group: line.split(',').slice(0, -2).join(',').trim(), team: parts[parts.length - 2] ?? '', role: parts[parts.length - 1] ?? '' });
  }
  return rules;
}
