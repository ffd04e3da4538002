/**
 * Whether a JSON value is valid against a schema of the supported keywords: how the compiler keeps only
 * the enum/const values the rest of their schema allows. Formats are checked by their grammar's
 * patterns (formats.ts), which cover a part of some formats: a value outside it is dropped, never
 * wrongly kept.
 * @internal
 * @module
 */
import type { RefResolver } from './schema-merge.js';
import { FORMAT_PATTERNS } from './formats.js';
import { INTEGER_FORMATS } from './number-bounds.js';
import { type Schema, type SchemaObject, isSchemaObject, jsonEqual, jsonTypeOf, nodeTypes, normalizeTuple } from './schema-keywords.js';

export class SchemaValidator {
  private readonly patterns = new Map<string, RegExp>();

  constructor(private readonly resolve: RefResolver) {}

  private regex(pattern: string): RegExp {
    let re = this.patterns.get(pattern);
    if (!re) this.patterns.set(pattern, (re = new RegExp(pattern, 'u')));
    return re;
  }

  valid(v: unknown, schema: Schema, path: string): boolean {
    if (typeof schema === 'boolean') return schema;
    const s = normalizeTuple(schema, path);
    if (typeof s.$ref === 'string' && !this.valid(v, this.resolve(s.$ref, path), s.$ref)) return false;
    const all = (key: string) => (Array.isArray(s[key]) ? (s[key] as Schema[]) : []);
    if (!all('allOf').every((b) => this.valid(v, b, path))) return false;
    if (s.anyOf !== undefined && !all('anyOf').some((b) => this.valid(v, b, path))) return false;
    if (s.oneOf !== undefined && all('oneOf').filter((b) => this.valid(v, b, path)).length !== 1) return false;
    if (s.const !== undefined && !jsonEqual(v, s.const)) return false;
    if (Array.isArray(s.enum) && !s.enum.some((w) => jsonEqual(v, w))) return false;
    const t = jsonTypeOf(v, path);
    if (s.type !== undefined || s.nullable !== undefined) {
      const types = nodeTypes(s.type === undefined ? { nullable: s.nullable } : s, path);
      if (!types.includes(t) && !(t === 'number' && types.includes('integer') && Number.isInteger(v))) return false;
    }
    switch (t) {
      case 'string':
        return this.validString(v as string, s);
      case 'number':
        return validNumber(v as number, s);
      case 'array':
        return this.validArray(v as unknown[], s, path);
      case 'object':
        return this.validObject(v as Record<string, unknown>, s, path);
      case 'null':
      case 'boolean':
        return true;
    }
  }

  private validString(v: string, s: SchemaObject): boolean {
    const n = [...v].length;
    if (typeof s.minLength === 'number' && n < s.minLength) return false;
    if (typeof s.maxLength === 'number' && n > s.maxLength) return false;
    if (typeof s.pattern === 'string' && !this.regex(s.pattern).test(v)) return false;
    if (typeof s.format === 'string' && Object.hasOwn(FORMAT_PATTERNS, s.format)) return this.regex(FORMAT_PATTERNS[s.format]).test(v);
    return true;
  }

  private validArray(v: unknown[], s: SchemaObject, path: string): boolean {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return false;
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) return false;
    const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as Schema[]) : [];
    const items = (s.items ?? true) as Schema;
    if (!v.every((x, i) => this.valid(x, i < prefix.length ? prefix[i] : items, path))) return false;
    return s.uniqueItems !== true || v.every((x, i) => v.findIndex((y) => jsonEqual(x, y)) === i);
  }

  private validObject(v: Record<string, unknown>, s: SchemaObject, path: string): boolean {
    const props = (isSchemaObject(s.properties) ? s.properties : {}) as Record<string, Schema>;
    const extra = (s.additionalProperties ?? true) as Schema;
    if (Array.isArray(s.required) && !s.required.every((k) => Object.hasOwn(v, k as string))) return false;
    const n = Object.keys(v).length;
    if ((typeof s.minProperties === 'number' && n < s.minProperties) || (typeof s.maxProperties === 'number' && n > s.maxProperties)) return false;
    return Object.entries(v).every(([k, x]) => this.valid(x, Object.hasOwn(props, k) ? props[k] : extra, path));
  }
}

function validNumber(v: number, s: SchemaObject): boolean {
  if (typeof s.minimum === 'number' && !(v >= s.minimum)) return false;
  if (typeof s.maximum === 'number' && !(v <= s.maximum)) return false;
  if (typeof s.exclusiveMinimum === 'number' && !(v > s.exclusiveMinimum)) return false;
  if (typeof s.exclusiveMaximum === 'number' && !(v < s.exclusiveMaximum)) return false;
  if (typeof s.format === 'string' && Object.hasOwn(INTEGER_FORMATS, s.format)) {
    const [lo, hi] = INTEGER_FORMATS[s.format];
    return Number.isInteger(v) && v >= Number(lo) && v <= Number(hi);
  }
  return true;
}
