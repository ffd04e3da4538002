import { describe, expect, it } from 'vitest';
import { compileJsonSchema } from '../../lib/structured/json-schema.js';
import { QwenVLError } from '../../lib/errors.js';

function errorOf(schema: unknown): QwenVLError {
  try {
    compileJsonSchema(schema);
  } catch (e) {
    expect(e).toBeInstanceOf(QwenVLError);
    return e as QwenVLError;
  }
  throw new Error(`compiled: ${JSON.stringify(schema)}`);
}

/** [schema, text the message must contain] */
const UNSUPPORTED: Array<[unknown, string]> = [
  [{ type: 'object', properties: { a: { type: 'string', not: { const: 'x' } } } }, '#/properties/a/not: the JSON schema keyword "not"'],
  [{ type: 'object', patternProperties: { '^x': {} } }, '#/patternProperties'],
  [{ type: 'array', items: { type: 'array', uniqueItems: true } }, '#/items/uniqueItems: uniqueItems with items other than an enum'],
  [{ type: 'array', prefixItems: [{ const: 1 }], uniqueItems: true }, 'uniqueItems together with prefixItems'],
  [{ type: 'array', contains: { type: 'integer' } }, '#/contains'],
  [{ type: 'number', multipleOf: 2 }, '#/multipleOf'],
  [{ if: { type: 'string' }, then: {} }, '#/if'],
  [{ type: 'object', propertyNames: { maxLength: 3 } }, '#/propertyNames'],
  [{ type: 'object', minProperties: 1 }, '#/minProperties: minProperties 1 above the 0 required properties'],
  [{ type: 'object', properties: { a: {}, b: {}, c: {} }, maxProperties: 2 }, '#/maxProperties: maxProperties 2 below'],
  [{ type: 'object', additionalProperties: true, maxProperties: 5 }, '#/maxProperties'],
  [{ type: 'object', dependentRequired: { a: ['b'] } }, '#/dependentRequired'],
  [{ type: 'object', unevaluatedProperties: false }, '#/unevaluatedProperties'],
  [{ $defs: { 'a/b': { type: 'integer', maxContains: 2 } }, $ref: '#/$defs/a~1b' }, '#/$defs/a~1b/maxContains'],
  [{ type: 'string', format: 'idn-hostname' }, '#/format: the format "idn-hostname"'],
  [{ type: 'integer', format: 'uint8' }, '#/format: the format "uint8"'],
  [{ enum: [1, 2], format: 'decimal' }, '#/format: the format "decimal"'],
  [{ type: 'string', pattern: '^(a)\\1$' }, '#/pattern: pattern "^(a)\\\\1$" uses the escape "\\1"'],
  [{ type: 'string', pattern: 'a(?=b)' }, 'lookaround'],
  [{ type: 'string', pattern: '\\bword' }, 'word boundary'],
  [{ type: 'string', pattern: 'a^b' }, 'the anchor "^" inside the pattern'],
  [{ type: 'string', pattern: '\\p{L}' }, 'the escape "\\p"'],
  [{ type: 'string', pattern: 'a\\uD800' }, 'a lone surrogate escape'],
  [{ type: 'string', pattern: '(a*)*' }, 'unbounded repetition of something that can match nothing'],
  [{ type: 'string', pattern: 'a{2000}' }, 'repetition count above'],
  [{ type: 'string', pattern: '^abc$', minLength: 4 }, '#/pattern: no match of the pattern could be narrowed to minLength 4'],
  [{ type: 'string', pattern: '^a{5}|b{3,}$', maxLength: 2 }, 'narrowed to minLength 0/maxLength 2'],
  [{ type: 'string', format: 'date', pattern: '^2' }, 'format together with pattern'],
  [{ type: 'number', minimum: 1e20 }, '#: a number range with no value of at most 15 digits'],
  [{ type: 'array', items: [{ type: 'string' }], prefixItems: [] }, '#/items: items as an array together with prefixItems'],
  [{ type: 'array', maxItems: 100000 }, '#/maxItems: a maxItems above'],
  [{ type: 'string', maxLength: 100000 }, '#/maxLength'],
  [{ $ref: 'https://example.com/s.json' }, '#/$ref: the $ref "https://example.com/s.json"'],
  [{ $ref: '#anchor' }, 'anchors'],
  [{ oneOf: [{ type: 'string' }, { type: 'string', maxLength: 3 }] }, '#/oneOf: branches 0 and 1 may both match'],
  [{ oneOf: [{ type: 'integer' }, { type: 'number' }] }, '#/oneOf: branches 0 and 1'],
  // The first branch writes objects but accepts any string too.
  [{ oneOf: [{ properties: { a: { type: 'integer' } } }, { type: 'string' }] }, '#/oneOf: branches 0 and 1'],
  [
    { oneOf: [{ properties: { k: { const: 'a' } }, required: ['k'] }, { properties: { k: { const: 'b' } }, required: ['k'] }, { enum: ['x'] }] },
    '#/oneOf: branches 0 and 2',
  ],
  [{ oneOf: [{ type: ['object', 'string'], properties: { k: { const: 1 } }, required: ['k'] }, { properties: { k: { const: 2 } }, required: ['k'] }] }, 'branches 0 and 1'],
  [
    { oneOf: [{ type: 'object', properties: { t: { const: 'a' } } }, { type: 'object', properties: { t: { const: 'b' } } }] },
    '#/oneOf: branches 0 and 1',
  ],
  [{ allOf: [{ type: 'string', pattern: 'a' }, { pattern: 'b' }] }, 'merging two different "pattern" values'],
  [{ anyOf: [{ type: 'string' }], oneOf: [{ type: 'string' }] }, 'anyOf together with oneOf'],
];

/** [schema, text the message must contain] */
const BAD_INPUT: Array<[unknown, string]> = [
  [42, '#: expected a JSON schema'],
  [{ type: 'strin' }, '#/type: expected one of'],
  [{ type: [] }, '#/type'],
  [{ type: 'object', properties: [] }, '#/properties: expected an object of schemas'],
  [{ type: 'object', properties: { a: 3 } }, '#/properties/a: expected a JSON schema'],
  [{ type: 'object', required: 'a' }, '#/required: expected an array of strings'],
  [{ type: 'array', minItems: -1 }, '#/minItems: expected a non-negative integer'],
  [{ type: 'array', minItems: 3, maxItems: 2 }, 'minItems 3 is above the most items allowed (2)'],
  [{ type: 'array', prefixItems: [true, false], minItems: 2 }, 'minItems 2 is above the most items allowed (1)'],
  [{ type: 'string', minLength: 5, maxLength: 4 }, 'minLength 5 is above maxLength 4'],
  [{ type: 'array', items: { enum: [1, 2] }, uniqueItems: true, minItems: 3 }, 'minItems 3 is above the most distinct items allowed (2)'],
  [{ type: 'array', uniqueItems: 'yes' }, '#/uniqueItems: expected a boolean'],
  [{ type: 'object', properties: { a: {}, b: {} }, required: ['a', 'b'], maxProperties: 1 }, '2 required properties are more than maxProperties 1'],
  [{ type: 'integer', minimum: 5, maximum: 4.5 }, 'no integer lies between'],
  [{ type: 'integer', minimum: 'a' }, '#/minimum: expected a finite number'],
  [{ type: 'number', exclusiveMaximum: Infinity }, '#/exclusiveMaximum: expected a JSON value, got number Infinity'],
  [{ enum: [] }, '#/enum: no enum/const value satisfies'],
  [{ type: 'string', enum: [1, 2] }, '#/enum: no enum/const value satisfies'],
  [{ enum: 'a' }, '#/enum: expected an array'],
  [{ const: 'a', enum: ['b'] }, '#/enum: no enum/const value'],
  [{ type: 'object', properties: { a: false }, required: ['a'] }, 'the required property "a" has the schema false'],
  [{ type: 'object', required: ['a'], additionalProperties: false }, 'the required property "a" is not allowed by additionalProperties false'],
  [
    { allOf: [{ properties: { a: { type: 'integer' } }, additionalProperties: false }, { required: ['b'] }] },
    'the required property "b" is not allowed',
  ],
  [false, '#: the schema false accepts no value'],
  [{ anyOf: [false, false] }, '#/anyOf: no branch accepts any value'],
  [{ allOf: [{ type: 'string' }, { type: 'integer' }] }, 'accepts no value'],
  [{ $ref: '#/$defs/missing' }, '#/$ref: $ref "#/$defs/missing" points at nothing'],
  [{ $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }, 'the schema is circular'],
  [{ anyOf: [{ $ref: '#' }, { type: 'null' }] }, 'the schema is circular'],
  [{ type: 'string', pattern: '(' }, 'is not a valid regular expression'],
  [{ type: 'string', format: 7 }, '#/format: expected a string, got number 7'],
  [{ type: 'string', pattern: '[^\\s\\S]' }, 'a character class that matches nothing'],
  [{ enum: [1, Number.NaN] }, '#/enum/1: expected a JSON value, got number NaN'],
  [{ type: 'object', properties: { f: () => 1 } }, '#/properties/f: expected a JSON value, got a function'],
  [{ const: 10n }, '#/const: expected a JSON value, got bigint 10'],
  [(() => { const s: Record<string, unknown> = { type: 'array' }; s.items = s; return s; })(), '#/items: the schema refers to itself'],
  [{ get type(): string { throw new Error('boom'); } }, '#: the schema could not be read (boom)'],
];

describe('structured output: schema errors', () => {
  for (const [i, [schema, text]] of UNSUPPORTED.entries()) {
    it(`E_UNSUPPORTED ${i}: ${text}`, () => {
      const e = errorOf(schema);
      expect(e.code).toBe('E_UNSUPPORTED');
      expect(e.message).toContain(text);
    });
  }
  for (const [i, [schema, text]] of BAD_INPUT.entries()) {
    it(`E_INPUT ${i}: ${text}`, () => {
      const e = errorOf(schema);
      expect(e.code).toBe('E_INPUT');
      expect(e.message).toContain(text);
    });
  }
});
