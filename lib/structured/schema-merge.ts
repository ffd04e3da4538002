/**
 * `allOf` (and `$ref` with sibling keywords) as one schema: the parts merged keyword by keyword so the
 * result accepts exactly the values every part accepts. Where that cannot be written as one schema of the
 * supported keywords (two different patterns or formats, two `anyOf`s), it is reported as unsupported.
 * Subschemas are merged lazily as `{ allOf: [a, b] }` and compiled (merged) when reached.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import { describe } from '../validate.js';
import {
  ANNOTATIONS,
  JSON_TYPES,
  type JsonType,
  type Schema,
  type SchemaObject,
  asSchema,
  checkKeywords,
  isSchemaObject,
  jsonEqual,
  nodeTypes,
  normalizeTuple,
  pointer,
  without,
} from './schema-keywords.js';

/** How refs are looked up: the target schema of a `$ref` string. */
export type RefResolver = (ref: string, path: string) => Schema;

const LOWER_BOUNDS = ['minItems', 'minLength', 'minimum', 'exclusiveMinimum', 'minProperties'];
const UPPER_BOUNDS = ['maxItems', 'maxLength', 'maximum', 'exclusiveMaximum', 'maxProperties'];
/** Deepest chain of refs expanded while merging: deeper means a recursive schema merged with itself. */
const MAX_EXPANSION = 32;

/** allOf of two schemas, simplified where one is trivial. */
export function lazyAllOf(a: Schema, b: Schema): Schema {
  if (a === true) return b;
  if (b === true) return a;
  if (a === false || b === false) return false;
  if (jsonEqual(a, b)) return a;
  return { allOf: [a, b] };
}

function list(v: unknown, path: string, key: string): unknown[] {
  if (!Array.isArray(v)) throw new QwenVLError('E_INPUT', `${pointer(path, key)}: expected an array, got ${describe(v)}`);
  return v;
}

function unsupported(path: string, what: string): QwenVLError {
  return new QwenVLError('E_UNSUPPORTED', `${path}: ${what} is not supported by structured output`);
}

export class SchemaMerger {
  constructor(private readonly resolve: RefResolver) {}

  /** `node` with its `$ref` and `allOf` merged in, so neither keyword is left at its top. */
  expand(schema: Schema, path: string, depth = 0): Schema {
    if (!isSchemaObject(schema)) return schema;
    if (depth > MAX_EXPANSION) throw unsupported(path, 'merging a recursive $ref with sibling keywords or allOf');
    checkKeywords(schema, path);
    const node = normalizeTuple(schema, path);
    if (node.$ref !== undefined) {
      if (typeof node.$ref !== 'string') throw unsupported(pointer(path, '$ref'), 'a $ref that is not a string');
      const target = this.resolve(node.$ref, pointer(path, '$ref'));
      return this.merge(this.expand(target, node.$ref, depth + 1), without(node, ['$ref']), path, depth + 1);
    }
    if (node.nullable !== undefined) {
      // Fold nullable into type, so merging it is merging types.
      return this.expand({ ...without(node, ['nullable']), type: nodeTypes(node, path) }, path, depth);
    }
    if (node.allOf !== undefined) {
      const parts = node.allOf;
      if (!Array.isArray(parts) || parts.length === 0) {
        throw new QwenVLError('E_INPUT', `${pointer(path, 'allOf')}: expected a non-empty array of schemas`);
      }
      let out: Schema = without(node, ['allOf']);
      parts.forEach((p, i) => {
        const where = pointer(pointer(path, 'allOf'), i);
        out = this.merge(out, this.expand(asSchema(p, where), where, depth + 1), where, depth + 1);
      });
      return out;
    }
    return node;
  }

  /** One schema accepting what both accept (`false` when they obviously contradict). */
  merge(a0: Schema, b0: Schema, path: string, depth = 0): Schema {
    const a = this.expand(a0, path, depth);
    const b = this.expand(b0, path, depth);
    if (a === true) return b;
    if (b === true) return a;
    if (a === false || b === false) return false;
    const out: SchemaObject = {};
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!(key in b) || ANNOTATIONS.has(key)) {
        if (!ANNOTATIONS.has(key)) out[key] = a[key];
        continue;
      }
      if (!(key in a)) {
        out[key] = b[key];
        continue;
      }
      const x = a[key];
      const y = b[key];
      if (LOWER_BOUNDS.includes(key)) out[key] = Math.max(x as number, y as number);
      else if (UPPER_BOUNDS.includes(key)) out[key] = Math.min(x as number, y as number);
      else if (key === 'type') {
        const ta = nodeTypes({ type: x }, path);
        const tb = nodeTypes({ type: y }, path);
        const allows = (list: JsonType[], t: JsonType) => list.includes(t) || (t === 'integer' && list.includes('number'));
        const both = JSON_TYPES.filter((t) => allows(ta, t) && allows(tb, t));
        if (both.length === 0) return false;
        out.type = both;
      } else if (key === 'required') out.required = [...new Set([...list(x, path, key), ...list(y, path, key)])];
      else if (key === 'enum') {
        list(x, path, key);
        list(y, path, key);
        const values = (x as unknown[]).filter((v) => (y as unknown[]).some((w) => jsonEqual(v, w)));
        if (values.length === 0) return false;
        out.enum = values;
      } else if (key === 'const') {
        if (!jsonEqual(x, y)) return false;
        out.const = x;
      } else if (jsonEqual(x, y)) out[key] = x;
      else if (!['properties', 'additionalProperties', 'items', 'prefixItems'].includes(key)) {
        throw unsupported(pointer(path, key), `merging two different "${key}" values (allOf or $ref siblings)`);
      }
    }
    this.mergeObjectShape(a, b, out);
    this.mergeArrayShape(a, b, out);
    return out;
  }

  /** properties/additionalProperties: each property must satisfy what each side says about it. */
  private mergeObjectShape(a: SchemaObject, b: SchemaObject, out: SchemaObject): void {
    const pa = (a.properties ?? {}) as Record<string, Schema>;
    const pb = (b.properties ?? {}) as Record<string, Schema>;
    const bothAdditional = a.additionalProperties !== undefined && b.additionalProperties !== undefined;
    const oneProperties = a.properties === undefined || b.properties === undefined;
    if (a.properties === undefined && b.properties === undefined) {
      if (bothAdditional) out.additionalProperties = lazyAllOf(a.additionalProperties as Schema, b.additionalProperties as Schema);
      return;
    }
    if (a.additionalProperties === undefined && b.additionalProperties === undefined && oneProperties) return;
    const addA = (a.additionalProperties ?? true) as Schema;
    const addB = (b.additionalProperties ?? true) as Schema;
    const props: Record<string, Schema> = {};
    for (const name of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
      props[name] = lazyAllOf(Object.hasOwn(pa, name) ? pa[name] : addA, Object.hasOwn(pb, name) ? pb[name] : addB);
    }
    out.properties = props;
    if (a.additionalProperties !== undefined || b.additionalProperties !== undefined) {
      out.additionalProperties = lazyAllOf(addA, addB);
    }
  }

  /** prefixItems/items: element k must satisfy each side's schema for index k. */
  private mergeArrayShape(a: SchemaObject, b: SchemaObject, out: SchemaObject): void {
    const pa = (a.prefixItems ?? []) as Schema[];
    const pb = (b.prefixItems ?? []) as Schema[];
    if (a.items === undefined && b.items === undefined && (a.prefixItems === undefined || b.prefixItems === undefined)) return;
    const itemsA = (a.items ?? true) as Schema;
    const itemsB = (b.items ?? true) as Schema;
    const n = Math.max(pa.length, pb.length);
    if (n > 0) {
      out.prefixItems = Array.from({ length: n }, (_, k) => lazyAllOf(k < pa.length ? pa[k] : itemsA, k < pb.length ? pb[k] : itemsB));
    }
    if (a.items !== undefined || b.items !== undefined) out.items = lazyAllOf(itemsA, itemsB);
  }
}
