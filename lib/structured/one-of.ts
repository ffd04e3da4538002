/**
 * `oneOf` needs exactly one branch to match, and a grammar can only promise "at least one". So a `oneOf`
 * compiles only when no value can match two branches, shown in one of three ways for every pair: their
 * value types differ, their enum/const values differ, or both require a property whose enum/const
 * values differ (a discriminated union). Otherwise it is reported as unsupported.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { SchemaMerger } from './schema-merge.js';
import { type Schema, JSON_TYPES, isSchemaObject, jsonEqual, jsonTypeOf, nodeTypes, pointer } from './schema-keywords.js';

/** The enum/const values of a schema, or null when it has neither. */
function values(s: Schema, path: string): unknown[] | null {
  if (!isSchemaObject(s)) return null;
  if (s.const !== undefined) return [s.const];
  return Array.isArray(s.enum) ? s.enum : null;
}

/** The value types a schema may produce (integers as numbers). */
function types(s: Schema, path: string): Set<string> {
  if (!isSchemaObject(s)) return new Set(s ? JSON_TYPES : []);
  const vals = values(s, path);
  const list: string[] = vals ? vals.map((v) => jsonTypeOf(v, path)) : nodeTypes(s, path);
  if (s.anyOf !== undefined || s.oneOf !== undefined) return new Set(JSON_TYPES);
  return new Set(list.map((t) => (t === 'integer' ? 'number' : t)));
}

function disjointValues(a: unknown[] | null, b: unknown[] | null): boolean {
  return a !== null && b !== null && !a.some((x) => b.some((y) => jsonEqual(x, y)));
}

function required(s: Schema): string[] {
  return isSchemaObject(s) && Array.isArray(s.required) ? (s.required as string[]) : [];
}

function disjoint(a: Schema, b: Schema, path: string, merger: SchemaMerger): boolean {
  const ta = types(a, path);
  if (![...types(b, path)].some((t) => ta.has(t))) return true;
  if (disjointValues(values(a, path), values(b, path))) return true;
  if (!isSchemaObject(a) || !isSchemaObject(b)) return false;
  const pa = (a.properties ?? {}) as Record<string, Schema>;
  const pb = (b.properties ?? {}) as Record<string, Schema>;
  return required(a).some((name) => {
    if (!required(b).includes(name) || !Object.hasOwn(pa, name) || !Object.hasOwn(pb, name)) return false;
    const x = merger.expand(pa[name], path);
    const y = merger.expand(pb[name], path);
    return disjointValues(values(x, path), values(y, path));
  });
}

/** E_UNSUPPORTED unless the (expanded) branches are pairwise disjoint. */
export function checkOneOf(branches: Schema[], path: string, merger: SchemaMerger): void {
  for (let i = 0; i < branches.length; i++) {
    for (let j = i + 1; j < branches.length; j++) {
      if (!disjoint(branches[i], branches[j], path, merger)) {
        throw new QwenVLError(
          'E_UNSUPPORTED',
          `${pointer(path, 'oneOf')}: branches ${i} and ${j} may both match one value, and structured output can ` +
            'only guarantee oneOf when branches differ by type, by const/enum, or by the const/enum of a property ' +
            'both require (use anyOf if a value may match several)',
        );
      }
    }
  }
}
