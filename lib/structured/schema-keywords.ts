/**
 * What the JSON schema compiler knows about keywords: which it honours, which are annotations it may
 * ignore, how a node's value types follow from `type`/`nullable` (or, without `type`, from the keywords
 * used), and the JSON pointers errors name.
 * @internal
 * @module
 */
import { QwenVLError, inputError } from '../errors.js';
import { describe } from '../validate.js';

export type Schema = boolean | SchemaObject;
export type SchemaObject = { [keyword: string]: unknown };

/** JSON value types as compiled (an integer is a kind of number; both may be asked for). */
export type JsonType = 'null' | 'boolean' | 'object' | 'array' | 'string' | 'number' | 'integer';
export const JSON_TYPES: readonly JsonType[] = ['null', 'boolean', 'object', 'array', 'string', 'number', 'integer'];

/** Keywords that never change which values are valid; `$defs`/`definitions` are read through `$ref`. */
export const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  '$schema',
  '$id',
  '$comment',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$defs',
  'definitions',
  // OpenAPI's hint for oneOf (pydantic emits it): which branch applies follows from the branches' consts.
  'discriminator',
]);

const KEYWORDS_BY_TYPE: Readonly<Record<'object' | 'array' | 'string' | 'number', readonly string[]>> = {
  object: ['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties'],
  array: ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems', 'uniqueItems'],
  string: ['minLength', 'maxLength', 'pattern', 'format'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
};

const SUPPORTED = new Set([
  'type',
  'enum',
  'const',
  'nullable',
  '$ref',
  'allOf',
  'anyOf',
  'oneOf',
  ...Object.values(KEYWORDS_BY_TYPE).flat(),
]);

/** `path` extended by one reference token (RFC 6901 escaping). */
export function pointer(path: string, token: string | number): string {
  return `${path}/${String(token).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

export function isSchemaObject(v: unknown): v is SchemaObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The deepest nesting a schema document may have. */
const MAX_DOCUMENT_DEPTH = 1000;

/**
 * A plain JSON copy of a schema document: what the compiler reads, so later changes to the caller's
 * object, getters, cycles or non-JSON values (NaN, functions, BigInts) cannot reach it. Keys whose value
 * is undefined are left out, as JSON.stringify does; anything else that JSON cannot hold is E_INPUT
 * naming where.
 */
export function jsonCopy(v: unknown, path: string, stack: object[] = []): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return v;
  } else if (typeof v === 'object') {
    if (stack.includes(v)) throw inputError(`${path}: the schema refers to itself (a cycle in the object; use $ref)`);
    if (stack.length >= MAX_DOCUMENT_DEPTH) throw inputError(`${path}: the schema is nested more than ${MAX_DOCUMENT_DEPTH} deep`);
    stack.push(v);
    try {
      if (Array.isArray(v)) return v.map((x, i) => jsonCopy(x, pointer(path, i), stack));
      const out: SchemaObject = {};
      for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = jsonCopy(x, pointer(path, k), stack);
      return out;
    } finally {
      stack.pop();
    }
  }
  throw inputError(`${path}: expected a JSON value, got ${describe(v)}`);
}

/** E_INPUT unless `v` is a schema (an object or a boolean). */
export function asSchema(v: unknown, path: string): Schema {
  if (typeof v === 'boolean' || isSchemaObject(v)) return v;
  throw inputError(`${path}: expected a JSON schema (an object or a boolean), got ${describe(v)}`);
}

/** E_UNSUPPORTED for the first keyword of `node` that the compiler would otherwise have to ignore. */
export function checkKeywords(node: SchemaObject, path: string): void {
  for (const key of Object.keys(node)) {
    if (SUPPORTED.has(key) || ANNOTATIONS.has(key)) continue;
    throw new QwenVLError(
      'E_UNSUPPORTED',
      `${pointer(path, key)}: the JSON schema keyword "${key}" is not supported by structured output`,
    );
  }
}

/**
 * A draft-07 tuple (`items` as an array, then `additionalItems`) in 2020-12 words (`prefixItems`, then
 * `items`); `additionalItems` without an `items` array means nothing and is dropped.
 */
export function normalizeTuple(node: SchemaObject, path: string): SchemaObject {
  if (!('additionalItems' in node) && !Array.isArray(node.items)) return node;
  if (!Array.isArray(node.items)) return without(node, ['additionalItems']);
  if (node.prefixItems !== undefined) {
    throw new QwenVLError('E_UNSUPPORTED', `${pointer(path, 'items')}: items as an array together with prefixItems is not supported by structured output`);
  }
  const out = without(node, ['items', 'additionalItems']);
  out.prefixItems = node.items;
  if (node.additionalItems !== undefined) out.items = node.additionalItems;
  return out;
}

/** Whether `node` has any keyword other than annotations (and those in `except`). */
export function hasConstraints(node: SchemaObject, except: readonly string[] = []): boolean {
  return Object.keys(node).some((k) => !ANNOTATIONS.has(k) && !except.includes(k));
}

/** `node` without the given keywords. */
export function without(node: SchemaObject, keys: readonly string[]): SchemaObject {
  return Object.fromEntries(Object.entries(node).filter(([k]) => !keys.includes(k)));
}

/**
 * The value types a node allows, in a fixed order: `type` (plus null when `nullable: true`), or without
 * `type` the types whose keywords it uses, or all types when it uses none. (A node with only string
 * keywords is met by any number too, but a model is better served by the type the author meant; the
 * values produced are valid either way.)
 */
export function nodeTypes(node: SchemaObject, path: string): JsonType[] {
  let types: Set<JsonType>;
  if (node.type !== undefined) {
    const list = Array.isArray(node.type) ? node.type : [node.type];
    if (list.length === 0) throw inputError(`${pointer(path, 'type')}: expected a type name or a non-empty array of them`);
    for (const t of list) {
      if (!JSON_TYPES.includes(t as JsonType)) {
        throw inputError(`${pointer(path, 'type')}: expected one of ${JSON_TYPES.join(', ')}, got ${describe(t)}`);
      }
    }
    types = new Set(list as JsonType[]);
  } else {
    const used = (Object.keys(KEYWORDS_BY_TYPE) as Array<keyof typeof KEYWORDS_BY_TYPE>).filter((t) =>
      KEYWORDS_BY_TYPE[t].some((k) => k in node),
    );
    types = new Set(used.length > 0 ? used : JSON_TYPES.filter((t) => t !== 'integer'));
  }
  if (node.nullable !== undefined && typeof node.nullable !== 'boolean') {
    throw inputError(`${pointer(path, 'nullable')}: expected a boolean, got ${describe(node.nullable)}`);
  }
  if (node.nullable === true) types.add('null');
  if (types.has('number')) types.delete('integer');
  return JSON_TYPES.filter((t) => types.has(t));
}

/** The JSON type of a value (integers count as numbers), or E_INPUT when it is not a JSON value. */
export function jsonTypeOf(v: unknown, path: string): Exclude<JsonType, 'integer'> {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    case 'number':
      if (Number.isFinite(v)) return 'number';
      break;
    case 'object':
      return 'object';
  }
  throw inputError(`${path}: expected a JSON value, got ${describe(v)}`);
}

/** Structural equality of JSON values (object key order ignored), as enum/const compare. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const bo = b as Record<string, unknown>;
  return ka.length === kb.length && ka.every((k) => k in bo && jsonEqual((a as Record<string, unknown>)[k], bo[k]));
}

/** A key for memoizing per schema: equal texts (key order included, as property order matters) share. */
export function schemaKey(v: unknown): string {
  return JSON.stringify(v);
}
