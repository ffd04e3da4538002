/**
 * JSON schema to {@link GrammarIR}: the grammar of the JSON texts a model may write so that the parsed
 * value is valid against the schema.
 *
 * Supported keywords:
 * - any type: `type` (one or an array; without it, the types whose keywords the schema uses, or all),
 *   `nullable`, `enum`, `const`, `anyOf`, `oneOf` (when no value can match two branches, see one-of.ts),
 *   `allOf` (merged, see schema-merge.ts), `$ref` to `#/...` pointers (`#/$defs/x`, `#/definitions/x`,
 *   `#`; recursive ones included);
 * - objects: `properties`, `required`, `additionalProperties`, `minProperties`/`maxProperties` (where the
 *   members settle them);
 * - arrays: `items`, `prefixItems` (and draft-07 `items` arrays with `additionalItems`), `minItems`,
 *   `maxItems`, `uniqueItems` (over enum/const/boolean/null items);
 * - strings: `minLength`, `maxLength` (code points), `pattern` (see pattern.ts; with lengths too),
 *   `format` (date, time, date-time, uuid, email, ipv4, ipv6, hostname, uri, byte: see formats.ts);
 * - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (integers: any digit count;
 *   other numbers: see numberRule), `format` int32/int64; binary, password, float, double constrain
 *   nothing.
 * Annotations are ignored (title, description, default, examples, $schema, $id, $comment, deprecated,
 * readOnly, writeOnly, $defs, definitions, and OpenAPI's discriminator). Any other keyword is an
 * E_UNSUPPORTED error naming it and its JSON pointer; a malformed or unsatisfiable schema is E_INPUT.
 *
 * Output policy, besides json-text.ts's whitespace, string and number text:
 * - Object members appear in the order the schema declares them; optional ones may be left out.
 *   Required names that `properties` does not declare follow, in `required` order.
 * - Without `additionalProperties`, no other members are written when `properties` declares some (every
 *   such object is still valid), and any are when it declares none (`{type: 'object'}` is any object);
 *   with `true` or a schema, extra members may follow the declared ones, under keys written without
 *   escapes that differ from every declared name.
 * - enum/const values are written as compact JSON, and only those the rest of their schema allows
 *   (schema-validate.ts).
 * - A number with bounds is written without exponent, in at most {@link MAX_NUMBER_DIGITS} digits.
 * - uniqueItems arrays list their values in the order the schema gives them.
 * @internal
 * @module
 */
import { QwenVLError, inputError } from '../errors.js';
import { describe } from '../validate.js';
import { type Alternative, GrammarBuilder, lit, ref } from './grammar-builder.js';
import type { GrammarIR } from './grammar-ir.js';
import { JsonText } from './json-text.js';
import { DecimalRanges } from './decimal-range.js';
import { patternContent } from './pattern.js';
import { FORMAT_PATTERNS, knownFormat } from './formats.js';
import { keyExcept } from './object-keys.js';
import { type Member, objectRule } from './object-members.js';
import { isIntegerFormat, numberBounds, scaledRange } from './number-bounds.js';
import { checkOneOf } from './one-of.js';
import { SchemaMerger } from './schema-merge.js';
import { leftRecursion } from './check.js';
import { SchemaValidator } from './schema-validate.js';
import { resolveRef } from './schema-ref.js';
import {
  type JsonType,
  type Schema,
  type SchemaObject,
  asSchema,
  checkKeywords,
  hasConstraints,
  isSchemaObject,
  jsonCopy,
  jsonEqual,
  jsonTypeOf,
  nodeTypes,
  normalizeTuple,
  pointer,
  schemaKey,
  without,
} from './schema-keywords.js';

/** The deepest nesting of schemas compiled inside one another. */
const MAX_NESTING = 256;

/** The most array elements or string characters a bound may ask for: each unrolls to a rule. */
export const MAX_UNROLLED = 4096;

function unsupported(path: string, what: string): QwenVLError {
  return new QwenVLError('E_UNSUPPORTED', `${path}: ${what} is not supported by structured output`);
}

/** A non-negative integer keyword, or `fallback` when absent. */
function count(node: SchemaObject, key: string, path: string, fallback: number | null): number | null {
  const v = node[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw inputError(`${pointer(path, key)}: expected a non-negative integer, got ${describe(v)}`);
  }
  if (v > MAX_UNROLLED) {
    throw unsupported(pointer(path, key), `a ${key} above ${MAX_UNROLLED}`);
  }
  return v;
}

/** The most digits a bounded non-integer number is written with (so it has at most 15 significant ones). */
export const MAX_NUMBER_DIGITS = 15;

class SchemaCompiler {
  readonly b = new GrammarBuilder();
  readonly j = new JsonText(this.b);
  private readonly decimals = new DecimalRanges(this.b);
  private readonly memo = new Map<string, number>();
  private readonly refs = new Map<string, number>();
  private readonly inProgress = new Map<string, number | undefined>();
  readonly merger = new SchemaMerger((r, path) => this.resolve(r, path));
  private readonly validator = new SchemaValidator((r, path) => this.resolve(r, path));

  constructor(private readonly root: Schema) {}

  private resolve(target: string, path: string): Schema {
    return resolveRef(this.root, target, path);
  }

  /** The rule for the values `schema` accepts; E_INPUT when it accepts none. */
  value(schema: unknown, path: string): number {
    const s = asSchema(schema, path);
    if (s === true) return this.j.value();
    if (s === false) throw inputError(`${path}: the schema false accepts no value`);
    const key = schemaKey(s);
    const known = this.memo.get(key);
    if (known !== undefined) return known;
    // A schema met again while it is being compiled (recursion through merged or distributed schemas)
    // refers to a rule defined once it is done.
    if (this.inProgress.has(key)) {
      const r = this.inProgress.get(key) ?? this.b.reserve();
      this.inProgress.set(key, r);
      return r;
    }
    if (this.inProgress.size >= MAX_NESTING) throw unsupported(path, `a schema nested more than ${MAX_NESTING} deep`);
    this.inProgress.set(key, undefined);
    let r = this.compileNode(s, path);
    const placeholder = this.inProgress.get(key);
    this.inProgress.delete(key);
    if (placeholder !== undefined) {
      this.b.define(placeholder, this.b.isDefined(r) ? this.b.alternatives(r) : [[ref(r)]]);
      r = placeholder;
    }
    this.memo.set(key, r);
    return r;
  }

  private compileNode(node: SchemaObject, path: string): number {
    checkKeywords(node, path);
    const s = normalizeTuple(node, path);
    if (s.$ref !== undefined) {
      if (typeof s.$ref !== 'string') throw inputError(`${pointer(path, '$ref')}: expected a string, got ${describe(s.$ref)}`);
      if (!hasConstraints(s, ['$ref'])) return this.refRule(s.$ref, pointer(path, '$ref'));
    }
    if (s.$ref !== undefined || s.allOf !== undefined) return this.value(this.merger.expand(s, path), path);
    if (s.anyOf !== undefined || s.oneOf !== undefined) return this.union(s, path);
    if (s.enum !== undefined || s.const !== undefined) return this.enumRule(s, path);
    if (s.format !== undefined) {
      if (typeof s.format !== 'string') throw inputError(`${pointer(path, 'format')}: expected a string, got ${describe(s.format)}`);
      if (!knownFormat(s.format)) throw unsupported(pointer(path, 'format'), `the format ${JSON.stringify(s.format)}`);
    }
    const types = nodeTypes(s, path);
    const rules = types.map((t) => this.typeRule(t, s, path));
    return rules.length === 1 ? rules[0] : this.b.rule(rules.map((r) => [ref(r)]));
  }

  private refRule(target: string, path: string): number {
    const known = this.refs.get(target);
    if (known !== undefined) return known;
    const r = this.b.reserve();
    this.refs.set(target, r);
    const inner = this.value(this.resolve(target, path), target);
    this.b.define(r, this.b.isDefined(inner) ? this.b.alternatives(inner) : [[ref(inner)]]);
    return r;
  }

  private union(s: SchemaObject, path: string): number {
    if (s.anyOf !== undefined && s.oneOf !== undefined) throw unsupported(path, 'anyOf together with oneOf');
    const key = s.anyOf !== undefined ? 'anyOf' : 'oneOf';
    const list = s[key];
    if (!Array.isArray(list) || list.length === 0) throw inputError(`${pointer(path, key)}: expected a non-empty array of schemas`);
    const rest = without(s, [key]);
    const branches = list.map((b, i) => {
      const where = pointer(pointer(path, key), i);
      const branch = asSchema(b, where);
      return { where, schema: hasConstraints(rest) ? this.merger.merge(rest, branch, where) : branch };
    });
    const live = branches.filter((b) => b.schema !== false);
    if (live.length === 0) throw inputError(`${pointer(path, key)}: no branch accepts any value`);
    if (key === 'oneOf') checkOneOf(live.map((b) => this.merger.expand(b.schema, b.where)), path, this.merger);
    return this.b.rule(live.map((b) => [ref(this.value(b.schema, b.where))]));
  }

  /** The enum/const values of `s` (equal ones once) that the rest of `s` allows. */
  private enumValues(s: SchemaObject, path: string): unknown[] {
    const where = pointer(path, s.enum !== undefined ? 'enum' : 'const');
    let values: unknown[];
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum)) throw inputError(`${where}: expected an array, got ${describe(s.enum)}`);
      values = s.enum;
    } else values = [s.const];
    values.forEach((v, i) => jsonTypeOf(v, s.enum !== undefined ? pointer(where, i) : where));
    if (s.const !== undefined && s.enum !== undefined) values = values.filter((v) => jsonEqual(v, s.const));
    values = values.filter((v, i) => values.findIndex((w) => jsonEqual(v, w)) === i);
    const rest = without(s, ['enum', 'const']);
    if (hasConstraints(rest)) {
      // Compiled too, so an unsupported or malformed keyword there is reported like anywhere else.
      this.value(rest, path);
      values = values.filter((v) => this.validator.valid(v, rest, path));
    }
    if (values.length === 0) throw inputError(`${where}: no enum/const value satisfies the rest of the schema`);
    return values;
  }

  private enumRule(s: SchemaObject, path: string): number {
    return this.b.literals(this.enumValues(s, path).map((v) => JSON.stringify(v)));
  }

  private typeRule(t: JsonType, s: SchemaObject, path: string): number {
    switch (t) {
      case 'null':
        return this.b.rule([[lit('null')]]);
      case 'boolean':
        return this.b.rule([[lit('true')], [lit('false')]]);
      case 'string':
        return this.stringRule(s, path);
      case 'integer':
        return this.integerRule(s, path);
      case 'number':
        return this.numberRule(s, path);
      case 'object':
        return this.objectRule(s, path);
      case 'array':
        return this.arrayRule(s, path);
    }
  }

  private stringRule(s: SchemaObject, path: string): number {
    const min = count(s, 'minLength', path, 0)!;
    const max = count(s, 'maxLength', path, null);
    if (max !== null && min > max) throw inputError(`${path}: minLength ${min} is above maxLength ${max}`);
    const length = min > 0 || max !== null ? { min, max } : undefined;
    if (s.pattern !== undefined && typeof s.pattern !== 'string') {
      throw inputError(`${pointer(path, 'pattern')}: expected a string, got ${describe(s.pattern)}`);
    }
    if (s.format !== undefined && Object.hasOwn(FORMAT_PATTERNS, s.format as string) && s.pattern !== undefined) {
      throw unsupported(pointer(path, 'format'), 'format together with pattern');
    }
    let content: number | undefined;
    const format = s.format as string | undefined;
    if (format !== undefined && Object.hasOwn(FORMAT_PATTERNS, format)) {
      content = patternContent(this.j, FORMAT_PATTERNS[format], pointer(path, 'format'), length);
    } else if (s.pattern !== undefined) {
      content = patternContent(this.j, s.pattern as string, pointer(path, 'pattern'), length);
    }
    if (content === undefined) return this.j.stringOfLength(min, max);
    return this.b.rule([[lit('"'), ref(content), lit('"')]]);
  }

  private integerRule(s: SchemaObject, path: string): number {
    const [lo, hi] = scaledRange(numberBounds(s, path), 0);
    if (lo === null && hi === null) return this.j.integer();
    if (lo !== null && hi !== null && lo > hi) throw inputError(`${path}: no integer lies between the minimum and the maximum`);
    return this.decimals.rule(lo, hi)!;
  }

  /**
   * Bounded non-integer numbers: N / 10^f for f = 0..14 fraction digits with at most
   * {@link MAX_NUMBER_DIGITS} digits in all and no exponent. Bounds are compared as exact decimals; with
   * at most 15 significant digits distinct texts are distinct doubles, so an exclusive bound cannot be
   * met by rounding either.
   */
  private numberRule(s: SchemaObject, path: string): number {
    if (isIntegerFormat(s.format)) return this.integerRule(s, path);
    const bounds = numberBounds(s, path);
    if (bounds.lo === null && bounds.hi === null) return this.j.number();
    const cap = 10n ** BigInt(MAX_NUMBER_DIGITS) - 1n;
    const alts: Alternative[] = [];
    for (let f = 0; f < MAX_NUMBER_DIGITS; f++) {
      const [lo, hi] = scaledRange(bounds, f);
      const r = this.decimals.rule(lo !== null && lo > -cap ? lo : -cap, hi !== null && hi < cap ? hi : cap, f);
      if (r !== null) alts.push([ref(r)]);
    }
    if (alts.length === 0) {
      throw unsupported(path, `a number range with no value of at most ${MAX_NUMBER_DIGITS} digits`);
    }
    return this.b.rule(alts);
  }

  private objectRule(s: SchemaObject, path: string): number {
    const propsPath = pointer(path, 'properties');
    const props = s.properties ?? {};
    if (!isSchemaObject(props)) throw inputError(`${propsPath}: expected an object of schemas, got ${describe(props)}`);
    const required = s.required ?? [];
    if (!Array.isArray(required) || !required.every((r) => typeof r === 'string')) {
      throw inputError(`${pointer(path, 'required')}: expected an array of strings, got ${describe(required)}`);
    }
    // Without additionalProperties, extra members are written only where no properties are declared
    // (a bare {type: 'object'} is then any object, not just {}).
    const additional =
      s.additionalProperties !== undefined
        ? asSchema(s.additionalProperties, pointer(path, 'additionalProperties'))
        : Object.keys(props).length === 0
          ? true
          : undefined;
    const members: Member[] = [];
    for (const [name, sub] of Object.entries(props)) {
      const where = pointer(propsPath, name);
      const schema = asSchema(sub, where);
      const isRequired = required.includes(name);
      if (schema === false) {
        if (isRequired) throw inputError(`${pointer(path, 'required')}: the required property "${name}" has the schema false`);
        continue;
      }
      members.push({ key: JSON.stringify(name), value: this.value(schema, where), required: isRequired });
    }
    for (const name of new Set(required)) {
      if (Object.hasOwn(props, name)) continue;
      if (additional === false) {
        throw inputError(`${pointer(path, 'required')}: the required property "${name}" is not allowed by additionalProperties false`);
      }
      const where = pointer(path, 'additionalProperties');
      members.push({ key: JSON.stringify(name), value: this.value(additional ?? true, where), required: true });
    }
    this.checkPropertyCounts(s, path, members, additional);
    if (additional === undefined || additional === false) return objectRule(this.j, members, null);
    const ws = ref(this.j.ws());
    const declared = [...Object.keys(props), ...required];
    const extraValue = this.value(additional, pointer(path, 'additionalProperties'));
    return objectRule(this.j, members, [ref(keyExcept(this.j, declared)), ws, lit(':'), ws, ref(extraValue)]);
  }

  /**
   * minProperties/maxProperties hold for every object written only when the members settle them: at least
   * that many required ones, at most that many possible ones and no extra ones (extra keys may repeat, and
   * a repeated key counts once once parsed).
   */
  private checkPropertyCounts(s: SchemaObject, path: string, members: Member[], additional: Schema | undefined): void {
    const min = count(s, 'minProperties', path, 0)!;
    const max = count(s, 'maxProperties', path, null);
    const required = members.filter((m) => m.required).length;
    if (max !== null && required > max) throw inputError(`${path}: ${required} required properties are more than maxProperties ${max}`);
    if (min > required) {
      throw unsupported(pointer(path, 'minProperties'), `minProperties ${min} above the ${required} required properties`);
    }
    if (max !== null && (members.length > max || (additional !== undefined && additional !== false))) {
      throw unsupported(pointer(path, 'maxProperties'), `maxProperties ${max} below the properties an object may have`);
    }
  }

  private arrayRule(s: SchemaObject, path: string): number {
    if (s.uniqueItems !== undefined && typeof s.uniqueItems !== 'boolean') {
      throw inputError(`${pointer(path, 'uniqueItems')}: expected a boolean, got ${describe(s.uniqueItems)}`);
    }
    if (s.uniqueItems === true) return this.uniqueArrayRule(s, path);
    const prefixList = s.prefixItems ?? [];
    if (!Array.isArray(prefixList)) throw inputError(`${pointer(path, 'prefixItems')}: expected an array of schemas, got ${describe(prefixList)}`);
    const prefix = prefixList.map((p, i) => asSchema(p, pointer(pointer(path, 'prefixItems'), i)));
    const items = s.items === undefined ? true : asSchema(s.items, pointer(path, 'items'));
    const min = count(s, 'minItems', path, 0)!;
    let max = count(s, 'maxItems', path, null);
    // A false schema at index k (or for every item past the prefix) caps the length at k.
    const falseAt = [...prefix, items].findIndex((p) => p === false);
    if (falseAt >= 0 && (max === null || falseAt < max)) max = falseAt;
    if (max !== null && min > max) throw inputError(`${path}: minItems ${min} is above the most items allowed (${max})`);
    if (prefix.length > MAX_UNROLLED) throw unsupported(pointer(path, 'prefixItems'), `more than ${MAX_UNROLLED} prefixItems`);
    const element = (k: number): number =>
      k < prefix.length ? this.value(prefix[k], pointer(pointer(path, 'prefixItems'), k)) : this.value(items, pointer(path, 'items'));
    const ws = ref(this.j.ws());
    const close = this.b.rule([[lit(']')]]);
    // after[k]: k elements written; from `tailFrom` on (unbounded max) all states are one rule.
    const tailFrom = Math.max(min, prefix.length, 1);
    let next: number;
    let k: number;
    if (max === null) {
      next = this.b.reserve();
      this.b.define(next, [[lit(']')], [lit(','), ws, ref(element(tailFrom)), ws, ref(next)]]);
      k = tailFrom - 1;
    } else {
      next = close;
      k = max - 1;
    }
    for (; k >= 1; k--) {
      next = this.b.rule([...(k >= min ? [[lit(']')]] : []), [lit(','), ws, ref(element(k)), ws, ref(next)]]);
    }
    const alts: Alternative[] = [];
    if (min === 0) alts.push([lit('['), ws, lit(']')]);
    if (max === null || max >= 1) alts.push([lit('['), ws, ref(element(0)), ws, ref(next)]);
    return this.b.rule(alts);
  }

  /**
   * `uniqueItems: true` over items with finitely many values (enum/const, boolean, null): the values in
   * the order the schema lists them, each at most once, which keeps them distinct.
   */
  private uniqueArrayRule(s: SchemaObject, path: string): number {
    const where = pointer(path, 'uniqueItems');
    if (s.prefixItems !== undefined) throw unsupported(where, 'uniqueItems together with prefixItems');
    const items = this.merger.expand(s.items === undefined ? true : asSchema(s.items, pointer(path, 'items')), pointer(path, 'items'));
    let values: unknown[];
    if (isSchemaObject(items) && (items.enum !== undefined || items.const !== undefined)) {
      values = this.enumValues(items, pointer(path, 'items'));
    } else if (isSchemaObject(items) && !hasConstraints(items, ['type']) && typeof items.type === 'string' && ['boolean', 'null'].includes(items.type)) {
      values = items.type === 'boolean' ? [false, true] : [null];
    } else if (items === false) values = [];
    else throw unsupported(where, 'uniqueItems with items other than an enum, a const, boolean or null');
    const n = values.length;
    const min = count(s, 'minItems', path, 0)!;
    const max = Math.min(count(s, 'maxItems', path, null) ?? n, n);
    if (min > max) throw inputError(`${path}: minItems ${min} is above the most distinct items allowed (${max})`);
    // State (i, c): value i written as the c-th item; counts past min matter only when max < n.
    const top = max < n ? max : min;
    if (n * (top + 1) > MAX_UNROLLED) throw unsupported(where, `uniqueItems over ${n} values with these counts`);
    const ws = ref(this.j.ws());
    const texts = values.map((v) => JSON.stringify(v));
    const state = new Map<string, number>();
    // Whether min can still be met after value i as the c-th item: no state is a dead end.
    const canFinish = (i: number, c: number) => c + (n - 1 - i) >= min;
    // The values that may come as the c-th item after value i, as one trie (see GrammarBuilder.choice).
    const next = (i: number, c: number): Alternative[] => {
      const entries = [];
      for (let k = i + 1; k < n && canFinish(k, c); k++) entries.push({ text: texts[k], then: [ws, ref(after(k, c))] });
      return entries.length > 0 ? [[ref(this.b.choice(entries))]] : [];
    };
    const after = (i: number, c: number): number => {
      const key = `${i},${Math.min(c, top)}`;
      let r = state.get(key);
      if (r === undefined) {
        const more = c < max ? next(i, c + 1) : [];
        r = this.b.rule([...(c >= min ? [[lit(']')]] : []), ...more.map((alt) => [lit(','), ws, ...alt])]);
        state.set(key, r);
      }
      return r;
    };
    const alts: Alternative[] = min === 0 ? [[lit('['), ws, lit(']')]] : [];
    if (max >= 1) alts.push(...next(-1, 1).map((alt) => [lit('['), ws, ...alt]));
    return this.b.rule(alts);
  }
}

/**
 * The grammar of JSON texts whose values are valid against `schema` (see this module's notes for what is
 * supported and the text policy). Throws QwenVLError E_UNSUPPORTED for a keyword or use it cannot
 * guarantee, E_INPUT for a malformed or unsatisfiable schema.
 */
export function compileJsonSchema(schema: unknown): GrammarIR {
  let copy: unknown;
  try {
    copy = jsonCopy(schema, '#');
  } catch (e) {
    if (e instanceof QwenVLError) throw e;
    // A getter or proxy of the caller's that throws.
    throw inputError(`#: the schema could not be read (${e instanceof Error ? e.message : String(e)})`);
  }
  const root = asSchema(copy, '#');
  const c = new SchemaCompiler(root);
  const ir = c.b.build(c.value(root, '#'));
  const cycle = leftRecursion(ir);
  if (cycle) throw inputError('#: the schema is circular: a $ref reaches itself before any JSON text is written');
  return ir;
}

/** The grammar of any JSON object (`responseFormat: { type: 'json_object' }`). */
export function jsonObjectGrammar(): GrammarIR {
  const j = new JsonText(new GrammarBuilder());
  return j.b.build(j.object());
}
