import SCIMMY from 'scimmy';
import { AppError } from '../errors/app-error.ts';
import type { ErrorCode } from '../errors/catalogue.ts';
import { namesUnsafeAttribute } from './scim-list.ts';
import { PATCH_OP_SCHEMA } from './scim-schemas.ts';

type SchemaDefinition = InstanceType<typeof SCIMMY.Types.SchemaDefinition>;
type Attribute = InstanceType<typeof SCIMMY.Types.Attribute>;
type Json = Record<string, unknown>;

/**
 * What IdPs send, made into what scimmy's PatchOp and schema coercion take, for any resource type
 * (the schema definition is the parameter: /Users and /Groups share this). Okta and Entra ID differ from
 * RFC 7644 and from each other in ways scimmy refuses (see docs: shared/notes/scim.md), so every body is
 * normalised first:
 * - operation names are matched case-insensitively (Entra: `Replace`);
 * - the strings "True"/"False" become booleans where the schema says boolean (Entra: `active`, `primary`,
 *   also inside pathless values and in bracket filters);
 * - `null` means "no value": the attribute is removed (Entra: `"phoneNumbers": null`);
 * - attributes the schema does not keep (phoneNumbers, addresses, title, the enterprise extension…) are
 *   dropped, in paths and in values, so a PATCH naming them answers 200 and changes nothing;
 * - a `replace` or `add` on a filtered path that matches nothing adds the element (Entra's
 *   `emails[type eq "work"].value` on a resource without one).
 * No HTTP here; errors are the catalogue's SCIM codes.
 */

const SCIM_TYPE_CODES: Record<string, ErrorCode> = {
  invalidFilter: 'scim_invalid_filter',
  invalidSyntax: 'scim_invalid_syntax',
  invalidValue: 'scim_invalid_value',
  invalidPath: 'scim_invalid_path',
  noTarget: 'scim_no_target',
  mutability: 'scim_mutability',
  tooMany: 'scim_too_many',
  uniqueness: 'scim_uniqueness',
};

/** scimmy's errors (SCIMError, or a TypeError from coercion) as the catalogue's SCIM errors; anything else is rethrown. */
export function scimmyError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof SCIMMY.Types.Error) return new AppError(SCIM_TYPE_CODES[err.scimType] ?? 'scim_invalid_value', err.message);
  if (err instanceof TypeError) return new AppError('scim_invalid_value', err.message);
  throw err;
}

const classes = new WeakMap<SchemaDefinition, new (data: Json, direction?: string) => InstanceType<typeof SCIMMY.Types.Schema>>();

/** A scimmy Schema class over a definition (what PatchOp.apply takes), built as scimmy's own SCIMMY.Schemas.User is. */
function resourceClassOf(definition: SchemaDefinition) {
  let cls = classes.get(definition);
  if (!cls) {
    cls = class extends SCIMMY.Types.Schema {
      static override readonly id = definition.id;
      static override readonly definition = definition;
      constructor(data: Json, direction = 'both') {
        super(data, direction);
        Object.assign(this, definition.coerce(data, direction));
      }
    };
    classes.set(definition, cls);
  }
  return cls;
}

/** The definition's attribute at a dotted path (filters removed), or undefined. */
function attributeAt(definition: SchemaDefinition, path: string): Attribute | undefined {
  try {
    const a = definition.attribute(path) as unknown;
    return a instanceof SCIMMY.Types.Attribute ? a : undefined;
  } catch {
    return undefined;
  }
}

function subAttributesOf(attribute: Attribute): Attribute[] {
  return ((attribute as unknown as { subAttributes?: Attribute[] }).subAttributes ?? []).filter((a) => a instanceof SCIMMY.Types.Attribute);
}

const BOOLEAN_STRING = /^(true|false)$/i;

/** A value made to fit its attribute: "True"/"False" → booleans where the attribute is boolean, nulls and unknown sub-attributes dropped. */
function normaliseValue(attribute: Attribute, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => normaliseElement(attribute, v)).filter((v) => v !== undefined);
  return normaliseElement(attribute, value);
}

function normaliseElement(attribute: Attribute, value: unknown): unknown {
  if (value === null) return undefined;
  if (attribute.type === 'boolean' && typeof value === 'string' && BOOLEAN_STRING.test(value)) return value.toLowerCase() === 'true';
  if (attribute.type === 'complex' && typeof value === 'object' && !Array.isArray(value)) {
    const subs = subAttributesOf(attribute);
    const out: Json = {};
    for (const [k, v] of Object.entries(value as Json)) {
      const sub = subs.find((s) => s.name.toLowerCase() === k.toLowerCase());
      if (!sub) continue;
      const nv = normaliseValue(sub, v);
      if (nv !== undefined) out[sub.name] = nv;
    }
    return out;
  }
  return value;
}

/** Every boolean attribute name of the definition (sub-attributes included), lower-case, for bracket filters. */
function booleanNames(definition: SchemaDefinition): string[] {
  const names = new Set<string>();
  const walk = (attrs: Attribute[]) => {
    for (const a of attrs) {
      if (a.type === 'boolean') names.add(a.name.toLowerCase());
      walk(subAttributesOf(a));
    }
  };
  walk(definition.attributes.filter((a): a is Attribute => a instanceof SCIMMY.Types.Attribute));
  return [...names];
}

/** `attr eq "True"` inside a bracket filter, for a boolean attribute, as `attr eq true`. */
function normaliseFilterBooleans(path: string, names: string[]): string {
  if (!path.includes('[') || names.length === 0) return path;
  const re = new RegExp(`\\b(${names.join('|')})(\\s+eq\\s+)"(true|false)"`, 'gi');
  return path.replace(re, (_m, name: string, eq: string, b: string) => `${name}${eq}${b.toLowerCase()}`);
}

/** A path with the schema's own URN before it (`urn:…:core:2.0:User:name.givenName`) dropped. */
export function stripSchemaPrefix(definition: SchemaDefinition, path: string): string {
  const prefix = `${definition.id.toLowerCase()}:`;
  return path.toLowerCase().startsWith(prefix) ? path.slice(prefix.length) : path;
}

/** The attribute name a path starts with, or null for an extension schema's path (a URN). */
function rootOf(path: string): string | null {
  if (/^urn:/i.test(path)) return null;
  return (path.split(/[.[]/, 1)[0] ?? '').trim();
}

/** Attributes of every resource that a client never writes: id, meta, schemas. */
const SERVER_OWNED = new Set(['id', 'meta', 'schemas']);

/**
 * A resource body (POST, PUT) read against the definition: a JSON object whose `schemas`, when sent,
 * name this resource's schema; nulls, unknown attributes and extensions dropped; booleans fixed; then
 * scimmy's coercion (types, required attributes), whose refusals are 400 invalidValue. Server-owned
 * attributes (id, meta) are dropped: the URL names the resource.
 */
export function readResourceBody(definition: SchemaDefinition, body: unknown): Json {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppError('scim_invalid_syntax', `the request body must be a SCIM ${definition.name} resource (a JSON object)`);
  const input = body as Json;
  if (input.schemas !== undefined) {
    if (!Array.isArray(input.schemas) || !input.schemas.some((s) => typeof s === 'string' && s.toLowerCase() === definition.id.toLowerCase())) {
      throw new AppError('scim_invalid_syntax', `the request body's schemas must include ${definition.id}`);
    }
  }
  const clean: Json = { schemas: [definition.id] };
  for (const [rawKey, value] of Object.entries(input)) {
    const key = stripSchemaPrefix(definition, rawKey);
    if (SERVER_OWNED.has(key.toLowerCase()) || value === null) continue;
    if (rootOf(key) === null || key.includes('.')) continue;
    const attribute = attributeAt(definition, key);
    if (!attribute) continue;
    const v = normaliseValue(attribute, value);
    if (v !== undefined) clean[attribute.name] = v;
  }
  try {
    return JSON.parse(JSON.stringify(definition.coerce(clean, 'in'))) as Json;
  } catch (err) {
    throw scimmyError(err);
  }
}

/** `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub` (RFC 7644 §3.5.2's PATH, the schema URN already dropped). */
const ATTRIBUTE_PATH = /^[A-Za-z][\w$-]*(\[[^[\]]+\])?(\.[A-Za-z$][\w$-]*)?$/;

/** A PATCH may not write a read-only attribute (`groups` of a User: change them through /Groups): 400 mutability (RFC 7644 §3.5.2). */
function requireWritable(definition: SchemaDefinition, root: string, where: string): void {
  const attribute = attributeAt(definition, root);
  if (attribute?.config.mutable === false) throw new AppError('scim_mutability', `${where}: ${attribute.name} is read-only`);
}

export interface Operation {
  op: 'add' | 'remove' | 'replace';
  path?: string;
  value?: unknown;
}

/**
 * The operations of a PatchOp body, normalised (see the file's comment); ops on attributes the schema does
 * not keep are gone, `id`, `meta` and `schemas` are refused (or dropped when a pathless value only repeats
 * `currentId`), and a replace with null is a remove. /Groups reads these itself (see scim-groups.service.ts).
 */
export function normaliseOperations(definition: SchemaDefinition, body: unknown, currentId: unknown): Operation[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppError('scim_invalid_syntax', 'the request body must be a SCIM PatchOp message (a JSON object)');
  const message = body as Json;
  if (message.schemas !== undefined && (!Array.isArray(message.schemas) || !message.schemas.includes(PATCH_OP_SCHEMA))) {
    throw new AppError('scim_invalid_syntax', `a PATCH body's schemas must be ["${PATCH_OP_SCHEMA}"]`);
  }
  const ops = message.Operations ?? message.operations;
  if (!Array.isArray(ops) || ops.length === 0) throw new AppError('scim_invalid_syntax', 'a PATCH body needs "Operations": a non-empty list of operations');
  const booleans = booleanNames(definition);
  const out: Operation[] = [];
  ops.forEach((raw: unknown, i) => {
    const where = `operation ${i + 1}`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new AppError('scim_invalid_value', `${where} must be an object`);
    const o = raw as Json;
    if (typeof o.op !== 'string') throw new AppError('scim_invalid_value', `${where} has no "op"`);
    const op = o.op.toLowerCase();
    if (op !== 'add' && op !== 'remove' && op !== 'replace') throw new AppError('scim_invalid_syntax', `${where}: "op" must be add, remove or replace, not "${o.op.slice(0, 40)}"`);
    if (o.path !== undefined && typeof o.path !== 'string') throw new AppError('scim_invalid_path', `${where}: "path" must be a string`);
    const path = typeof o.path === 'string' && o.path.trim() !== '' ? normaliseFilterBooleans(stripSchemaPrefix(definition, o.path.trim()), booleans) : undefined;
    // scimmy parses a path's filter into an object keyed by attribute names: see namesUnsafeAttribute.
    if (path !== undefined && namesUnsafeAttribute(path)) throw new AppError('scim_invalid_path', `${where}: "${path.slice(0, 100)}" is not an attribute path`);

    if (path === undefined) {
      if (op === 'remove') throw new AppError('scim_no_target', `${where}: "remove" needs a path`);
      if (o.value === null || typeof o.value !== 'object' || Array.isArray(o.value)) throw new AppError('scim_invalid_value', `${where}: without a path, "value" must be an object of attributes`);
      const value: Json = {};
      for (const [rawKey, v] of Object.entries(o.value as Json)) {
        const key = stripSchemaPrefix(definition, rawKey);
        if (namesUnsafeAttribute(key)) throw new AppError('scim_invalid_path', `${where}: "${key.slice(0, 100)}" is not an attribute path`);
        const root = rootOf(key);
        if (root === null || root.toLowerCase() === 'schemas' || root.toLowerCase() === 'meta') continue;
        if (root.toLowerCase() === 'id') {
          // Okta's group rename sends the resource's own id back: harmless. Another id is a change of it.
          if (v === currentId) continue;
          throw new AppError('scim_mutability', `${where}: id cannot be changed`);
        }
        const attribute = attributeAt(definition, key.replace(/\[[^\]]*\]/g, ''));
        if (!attribute) continue;
        requireWritable(definition, root, where);
        if (v === null) {
          if (op === 'replace') out.push({ op: 'remove', path: key });
          continue;
        }
        value[key] = normaliseValue(attribute, v);
      }
      if (Object.keys(value).length) out.push({ op, value });
      return;
    }

    const root = rootOf(path);
    if (root === null) return; // an extension schema's attribute (Entra's enterprise extension): not kept
    if (!ATTRIBUTE_PATH.test(path)) throw new AppError('scim_invalid_path', `${where}: "${path.slice(0, 100)}" is not an attribute path`);
    if (SERVER_OWNED.has(root.toLowerCase())) {
      if (root.toLowerCase() === 'id' && op === 'replace' && o.value === currentId) return;
      throw new AppError('scim_mutability', `${where}: ${root} cannot be changed`);
    }
    const attribute = attributeAt(definition, path.replace(/\[[^\]]*\]/g, ''));
    if (!attribute) {
      // Not kept (phoneNumbers, addresses, title…) — unless the path's root is ours and the rest is a typo.
      if (attributeAt(definition, root)) throw new AppError('scim_invalid_path', `${where}: "${path}" names no attribute of ${definition.name}`);
      return;
    }
    requireWritable(definition, root, where);
    if (op === 'remove') out.push(o.value === undefined ? { op, path } : { op, path, value: normaliseValue(attribute, o.value) });
    else if (o.value === null || o.value === undefined) {
      if (op === 'add') throw new AppError('scim_invalid_value', `${where}: "add" needs a value`);
      out.push({ op: 'remove', path });
    } else out.push({ op, path, value: normaliseValue(attribute, o.value) });
  });
  return out;
}

const FILTERED = /^([^[\]]+)\[([^\]]+)\](?:\.(.+))?$/;

/**
 * For a `replace` or `add` on `attr[filter].sub` that matches no element: the `add` that creates the element, with
 * the filter's equalities as its values (`emails[type eq "work"].value` → add emails [{type:"work", value}]).
 * Null when the path has no filter or the filter is not plain equalities.
 */
function addForMissingElement(path: string, value: unknown): Operation | null {
  const m = FILTERED.exec(path);
  if (!m) return null;
  const [, attr = '', filter = '', sub] = m;
  let branches: Array<Record<string, unknown>>;
  try {
    branches = [...new SCIMMY.Types.Filter(filter)] as Array<Record<string, unknown>>;
  } catch {
    return null;
  }
  const [branch] = branches;
  if (branches.length !== 1 || !branch) return null;
  const element: Json = {};
  for (const [k, c] of Object.entries(branch)) {
    if (!Array.isArray(c) || c.length !== 2 || c[0] !== 'eq') return null;
    element[k] = c[1];
  }
  if (sub !== undefined) element[sub] = value;
  else if (value !== null && typeof value === 'object' && !Array.isArray(value)) Object.assign(element, value);
  else return null;
  return { op: 'add', path: attr, value: [element] };
}

/**
 * Applies a PatchOp body to a resource (a plain object as the service renders it) and returns the
 * patched resource as a plain object; the caller then applies it exactly as a PUT of it would (one code
 * path for the rules). Operations run in order, each on the result of the one before; nothing is written
 * here. A body that changes nothing returns the resource as it was.
 */
export async function applyPatch(definition: SchemaDefinition, current: Json, body: unknown): Promise<Json> {
  const operations = normaliseOperations(definition, body, current.id);
  const Resource = resourceClassOf(definition);
  let resource = JSON.parse(JSON.stringify(current)) as Json;
  for (const operation of operations) {
    const run = async (op: Operation) => {
      // scimmy's types say apply() always returns the resource; it returns undefined when nothing changed.
      const patched = (await new SCIMMY.Messages.PatchOp({ schemas: [PATCH_OP_SCHEMA], Operations: [op] }).apply(new Resource(resource))) as object | undefined;
      if (patched !== undefined) resource = JSON.parse(JSON.stringify(patched)) as Json;
    };
    try {
      await run(operation);
    } catch (err) {
      const fallback = err instanceof SCIMMY.Types.Error && err.scimType === 'noTarget' && operation.op !== 'remove' && operation.path ? addForMissingElement(operation.path, operation.value) : null;
      if (!fallback) throw scimmyError(err);
      try {
        await run(fallback);
      } catch (again) {
        throw scimmyError(again);
      }
    }
  }
  return resource;
}
