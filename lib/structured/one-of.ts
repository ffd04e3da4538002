/**
 * `oneOf` needs exactly one branch to match, and a grammar can only promise "at least one". So a `oneOf`
 * compiles only when no value written for one branch can match another, shown for every ordered pair
 * (writer, other) in one of three ways: the value types the writer's grammar produces are types the
 * other rejects, their enum/const values differ, or the writer writes only objects and both require a
 * property whose enum/const values differ (a discriminated union). Otherwise it is reported as
 * unsupported. What a branch writes can be narrower than what it accepts: a branch without `type` but
 * with `properties` writes objects yet accepts every string, so the two are told apart.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { SchemaMerger } from './schema-merge.js';
import { type Schema, JSON_TYPES, isSchemaObject, jsonEqual, jsonTypeOf, nodeTypes, pointer } from './schema-keywords.js';

type Kind = 'null' | 'boolean' | 'object' | 'array' | 'string' | 'number';

/** The enum/const values of a schema, or null when it has neither. */
function values(s: Schema): unknown[] | null {
  if (!isSchemaObject(s)) return null;
  if (s.const !== undefined) return [s.const];
  return Array.isArray(s.enum) ? s.enum : null;
}

const ALL: ReadonlySet<Kind> = new Set(JSON_TYPES.filter((t): t is Kind => t !== 'integer'));

/**
 * The value types a branch writes (`written`: types inferred from its keywords, as compiled) or accepts
 * (types it names, else all: keywords of other types do not reject a value).
 */
function kinds(s: Schema, path: string, written: boolean): ReadonlySet<Kind> {
  if (!isSchemaObject(s)) return s ? ALL : new Set();
  if (s.anyOf !== undefined || s.oneOf !== undefined) return ALL;
  const vals = values(s);
  if (vals) return new Set(vals.map((v) => jsonTypeOf(v, path)));
  if (!written && s.type === undefined) return ALL;
  return new Set(nodeTypes(s, path).map((t) => (t === 'integer' ? 'number' : t)));
}

function disjointValues(a: unknown[] | null, b: unknown[] | null): boolean {
  return a !== null && b !== null && !a.some((x) => b.some((y) => jsonEqual(x, y)));
}

function required(s: Schema): string[] {
  return isSchemaObject(s) && Array.isArray(s.required) ? (s.required as string[]) : [];
}

/** Whether no value the `writer` branch writes is accepted by the `other`. */
function excludes(writer: Schema, other: Schema, path: string, merger: SchemaMerger): boolean {
  const written = kinds(writer, path, true);
  const accepted = kinds(other, path, false);
  if (![...written].some((t) => accepted.has(t))) return true;
  if (disjointValues(values(writer), values(other))) return true;
  if (!isSchemaObject(writer) || !isSchemaObject(other) || ![...written].every((t) => t === 'object')) return false;
  const pw = (writer.properties ?? {}) as Record<string, Schema>;
  const po = (other.properties ?? {}) as Record<string, Schema>;
  return required(writer).some((name) => {
    if (!required(other).includes(name) || !Object.hasOwn(pw, name) || !Object.hasOwn(po, name)) return false;
    return disjointValues(values(merger.expand(pw[name], path)), values(merger.expand(po[name], path)));
  });
}

/** E_UNSUPPORTED unless no value written for one (expanded) branch matches another. */
export function checkOneOf(branches: Schema[], path: string, merger: SchemaMerger): void {
  for (let i = 0; i < branches.length; i++) {
    for (let j = i + 1; j < branches.length; j++) {
      const [a, b] = [branches[i], branches[j]];
      if (!excludes(a, b, path, merger) || !excludes(b, a, path, merger)) {
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
