import { describe, expect, it } from 'vitest';
import { compileJsonSchema, jsonObjectGrammar } from '../../lib/structured/json-schema.js';
import { GrammarRecognizer, recognizes } from '../../lib/structured/recognize.js';
import { WS_MAX_INDENT } from '../../lib/structured/json-text.js';
import { validatorFor } from '../helpers/json-schema-validator.js';
import { PROPERTY_SCHEMAS } from './schemas.js';

/** A keyword's reference cases: JSON texts the grammar must accept and texts it must reject. */
interface Case {
  schema: unknown;
  accept: string[];
  reject: string[];
}

const CASES: Record<string, Case> = {
  'type string: escapes, Unicode, controls': {
    schema: { type: 'string' },
    accept: ['""', '"abc"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\u00e9\\u20AC"', '"\\ud83d\\ude00"', '"é😀\u2028"'],
    reject: ['"a', 'abc', '"\n"', '"\u0001"', '"\\x41"', '"\\ud83d"', '"\\ude00"', '"\\u12"', "'a'", '"a" '],
  },
  'type number': {
    schema: { type: 'number' },
    accept: ['0', '-0', '12', '-3.25', '1e9', '1E+9', '2.5e-3', '0.0', '1e99', `9${'0'.repeat(199)}.5e-99`],
    reject: ['01', '+1', '.5', '1.', '1e', '-', '0x10', 'NaN', 'Infinity', '1 ', ' 1', '1e999', `1${'0'.repeat(200)}`],
  },
  'type integer': {
    schema: { type: 'integer' },
    accept: ['0', '7', '-12', '123456789012345678901234567890', `-${'9'.repeat(200)}`],
    reject: ['-0', '01', '1.0', '1e3', '+5', '1.5', `1${'0'.repeat(200)}`],
  },
  'type boolean and null': {
    schema: { type: ['boolean', 'null'] },
    accept: ['true', 'false', 'null'],
    reject: ['True', 'nul', '0', '""'],
  },
  nullable: { schema: { type: 'string', nullable: true }, accept: ['null', '"x"'], reject: ['1'] },
  'properties and required, declared order': {
    schema: {
      type: 'object',
      properties: { a: { type: 'integer' }, b: { type: 'string' }, c: { type: 'boolean' } },
      required: ['a', 'c'],
    },
    accept: ['{"a":1,"c":true}', '{"a":1,"b":"x","c":false}', '{ "a" : 1 , "c" : true }', '{\n  "a": 1,\n  "c": true\n}'],
    reject: ['{"c":true,"a":1}', '{"a":1}', '{"a":1,"c":true,"d":1}', '{"a":1,"a":1,"c":true}', '{}', '{"a":"1","c":true}'],
  },
  'all properties optional': {
    schema: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } } },
    accept: ['{}', '{ }', '{"a":1}', '{"b":2}', '{"a":1,"b":2}'],
    reject: ['{,}', '{"a":1,}', '{"b":2,"a":1}', '{"c":1}'],
  },
  'additionalProperties true': {
    schema: { type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: true },
    accept: ['{}', '{"a":1}', '{"a":1,"b":[1,{"c":null}]}', '{"b":"x"}', '{"aa":1,"b":2}', '{"":0}'],
    reject: ['{"b":1,"a":1}', '{"a":1,"a":2}', '{"a":"x"}', '{"\\u0061":"x"}'],
  },
  'an object with no declared properties is any object': {
    schema: { type: 'object', required: ['id'] },
    accept: ['{"id":1}', '{"id":{"x":[]},"y":"z"}'],
    reject: ['{}', '{"y":1}', '[]'],
  },
  'additionalProperties schema': {
    schema: { type: 'object', properties: { id: { type: 'integer' } }, additionalProperties: { type: 'string' } },
    accept: ['{"id":1,"x":"y"}', '{"x":"y","z":""}'],
    reject: ['{"x":1}', '{"id":"1"}'],
  },
  'additionalProperties false with undeclared required': {
    schema: { type: 'object', required: ['x'], additionalProperties: { type: 'integer' } },
    accept: ['{"x":1}', '{"x":1,"y":2}'],
    reject: ['{}', '{"x":"1"}', '{"y":2}'],
  },
  enum: {
    schema: { enum: ['a', 2, null, { k: [true] }] },
    accept: ['"a"', '2', 'null', '{"k":[true]}'],
    reject: ['"b"', '2.0', '{"k": [true]}', '"A"'],
  },
  'enum filtered by type': { schema: { type: 'integer', enum: ['1', 1, 2.5, 3] }, accept: ['1', '3'], reject: ['"1"', '2.5'] },
  'enum values filtered by the rest of the schema, whatever the key order': {
    schema: {
      type: ['object', 'null'],
      properties: { a: { type: 'integer', maximum: 5 } },
      required: ['a'],
      enum: [{ b: 1, a: 2 }, { a: 9 }, { b: 1 }, null, 3],
    },
    accept: ['{"b":1,"a":2}', 'null'],
    reject: ['3', '{"a":9}', '{"b":1}', '{"a":2,"b":1}'],
  },
  'enum of integers': { schema: { type: 'integer', nullable: true, enum: [1.0, 2.5, null, '3'] }, accept: ['1', 'null'], reject: ['2.5', '"3"'] },
  const: { schema: { const: 'x"y' }, accept: ['"x\\"y"'], reject: ['"x"', '"x\\u0022y"'] },
  'items, minItems, maxItems': {
    schema: { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 3 },
    accept: ['[1]', '[1,2]', '[ 1 , 2 , 3 ]', '[\n  1,\n  2\n]'],
    reject: ['[]', '[1,2,3,4]', '[1,]', '["a"]', '[1 2]'],
  },
  'items unbounded': { schema: { type: 'array', items: { type: 'null' } }, accept: ['[]', '[null,null,null,null,null]'], reject: ['[null,1]'] },
  'prefixItems with items false': {
    schema: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false },
    accept: ['[]', '["a"]', '["a",1]'],
    reject: ['[1]', '["a","b"]', '["a",1,2]'],
  },
  'prefixItems with items schema and minItems': {
    schema: { type: 'array', prefixItems: [{ const: 0 }], items: { type: 'boolean' }, minItems: 2 },
    accept: ['[0,true]', '[0,false,true,true]'],
    reject: ['[0]', '[1,true]', '[0,0]'],
  },
  'draft-07 tuples: items array and additionalItems': {
    schema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'array', items: [{ type: 'string' }], additionalItems: false },
    accept: ['[]', '["a"]'],
    reject: ['[1]', '["a","b"]'],
  },
  'format byte (base64)': { schema: { type: 'string', format: 'byte' }, accept: ['""', '"QUJD"', '"QUI="', '"QQ=="'], reject: ['"QUJ"', '"Q==="', '"QU JD"'] },
  'formats that constrain nothing, and string formats on other types': {
    schema: { type: ['string', 'integer', 'number'], format: 'password', minLength: 2 },
    accept: ['"ab"', '5', '1.5'],
    reject: ['"a"'],
  },
  'format ipv6, hostname, uri': {
    schema: { anyOf: [{ type: 'string', format: 'ipv6' }, { type: 'string', format: 'hostname' }, { type: 'string', format: 'uri' }] },
    accept: ['"2001:db8:0:0:0:ff00:42:8329"', '"www.example.com"', '"localhost"', '"https://example.com/a/b%20c?q=1&r=/x#top"', '"http://h:8080"'],
    reject: ['"2001:db8::1::2"', '"-bad.com"', '"a..b"', '"ftp:/x"', '"https://exa mple.com"', '"https://"'],
  },
  'uniqueItems over an enum': {
    schema: { type: 'array', items: { enum: ['x', 'y', 'z'] }, uniqueItems: true, minItems: 2 },
    accept: ['["x","y"]', '["x","z"]', '["x","y","z"]', '["y", "z"]'],
    reject: ['["x"]', '["x","x"]', '[]', '["x","y","z","x"]'],
  },
  'int32 and int64 formats bound integers': {
    schema: { anyOf: [{ type: 'integer', format: 'int32', minimum: 0 }, { type: 'number', format: 'int64', maximum: -1 }] },
    accept: ['0', '2147483647', '-1', '-9223372036854775808'],
    reject: ['2147483648', '-9223372036854775809', '1.5', '-0.5'],
  },
  'nested objects': {
    schema: {
      type: 'object',
      properties: { p: { type: 'object', properties: { q: { type: 'array', items: { type: 'object', properties: { r: { type: 'null' } }, required: ['r'] } } }, required: ['q'] } },
      required: ['p'],
    },
    accept: ['{"p":{"q":[]}}', '{"p":{"q":[{"r":null},{"r":null}]}}'],
    reject: ['{"p":{"q":[{}]}}', '{"p":{}}'],
  },
  anyOf: {
    schema: { anyOf: [{ type: 'string' }, { type: 'integer', minimum: 10 }] },
    accept: ['"s"', '10', '999'],
    reject: ['9', 'null', '10.5'],
  },
  'anyOf distributed over sibling keywords': {
    schema: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, anyOf: [{ required: ['a'] }, { required: ['b'] }] },
    accept: ['{"a":1}', '{"b":1}', '{"a":1,"b":2}'],
    reject: ['{}'],
  },
  'oneOf discriminated by const': {
    schema: {
      oneOf: [
        { type: 'object', properties: { t: { const: 'a' }, x: { type: 'integer' } }, required: ['t', 'x'] },
        { type: 'object', properties: { t: { const: 'b' }, y: { type: 'string' } }, required: ['t', 'y'] },
      ],
    },
    accept: ['{"t":"a","x":1}', '{"t":"b","y":"s"}'],
    reject: ['{"t":"a","y":"s"}', '{"t":"c","x":1}'],
  },
  'allOf merged': {
    schema: { allOf: [{ type: 'integer', minimum: 0 }, { maximum: 5 }, { type: ['integer', 'string'] }] },
    accept: ['0', '5'],
    reject: ['6', '-1', '"x"'],
  },
  'allOf: additionalProperties false elsewhere forbids the other part\'s properties': {
    schema: { allOf: [{ properties: { a: { type: 'integer' } }, additionalProperties: false }, { properties: { a: true, b: true } }] },
    accept: ['{}', '{"a":1}'],
    reject: ['{"b":1}', '{"a":1,"b":1}'],
  },
  '$ref to $defs, recursive': {
    schema: {
      $defs: { list: { type: 'object', properties: { v: { type: 'integer' }, next: { $ref: '#/$defs/list' } }, required: ['v'] } },
      $ref: '#/$defs/list',
    },
    accept: ['{"v":1}', '{"v":1,"next":{"v":2,"next":{"v":3}}}'],
    reject: ['{"v":1,"next":{}}', '{"v":1,"next":null}'],
  },
  '$ref to definitions and to the root': {
    schema: { definitions: { n: { type: 'integer' } }, type: 'array', items: { anyOf: [{ $ref: '#/definitions/n' }, { $ref: '#' }] } },
    accept: ['[]', '[1,[2,[]],3]'],
    reject: ['[[1],"x"]'],
  },
  'minLength/maxLength count code points, an escape is one': {
    schema: { type: 'string', minLength: 2, maxLength: 3 },
    accept: ['"ab"', '"abc"', '"\\n\\t"', '"😀😀"', '"\\ud83d\\ude00x"', '"é\\u00e9"'],
    reject: ['"a"', '"abcd"', '"\\n"', '"😀"', '"\\ud83d\\ude00"', '"\\\\\\\\\\\\\\\\"'],
  },
  'pattern anchored': {
    schema: { type: 'string', pattern: '^[a-c]+-\\d{2,3}$' },
    accept: ['"a-12"', '"abcabc-123"'],
    reject: ['"a-1"', '"a-1234"', '"d-12"', '"xa-12"', '"-12"'],
  },
  'pattern unanchored matches anywhere': { schema: { type: 'string', pattern: 'x[0-9]' }, accept: ['"x1"', '"aax9bb"'], reject: ['"x"', '"9x"'] },
  'pattern characters that need escapes in JSON': {
    schema: { type: 'string', pattern: '^"\\\\\\n$' },
    accept: ['"\\"\\\\\\n"'],
    reject: ['"\\"\\\\n"'],
  },
  'format date': {
    schema: { type: 'string', format: 'date' },
    accept: ['"2024-02-29"', '"2000-02-29"', '"1999-12-31"', '"0001-01-01"'],
    reject: ['"2023-02-29"', '"1900-02-29"', '"2023-04-31"', '"2023-13-01"', '"2023-00-10"', '"2023-1-01"'],
  },
  'format time and date-time': {
    schema: { type: 'string', format: 'date-time' },
    accept: ['"2024-01-02T03:04:05Z"', '"2024-01-02t23:59:59.123+05:30"', '"2024-01-02T00:00:00-23:59"'],
    reject: ['"2024-01-02T24:00:00Z"', '"2024-01-02T03:04:05"', '"2024-01-02 03:04:05Z"', '"2024-01-02T03:60:00Z"'],
  },
  'format uuid, ipv4, email': {
    schema: { anyOf: [{ type: 'string', format: 'uuid' }, { type: 'string', format: 'ipv4' }, { type: 'string', format: 'email' }] },
    accept: ['"123e4567-e89b-12d3-a456-426614174000"', '"255.0.10.1"', '"a.b+c@example.co.uk"'],
    reject: ['"123e4567-e89b-12d3-a456-42661417400"', '"256.1.1.1"', '"01.1.1.1"', '"a@b"', '"a..b@c.d"', '"a@-b.c"'],
  },
  'integer minimum/maximum': {
    schema: { type: 'integer', minimum: -15, maximum: 230 },
    accept: ['-15', '-9', '0', '99', '100', '230'],
    reject: ['-16', '231', '1000', '-100', '-0'],
  },
  'integer exclusive bounds': {
    schema: { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 10 },
    accept: ['1', '9'],
    reject: ['0', '10'],
  },
  'the tighter bound wins, exclusive at a tie': {
    schema: { anyOf: [{ type: 'integer', minimum: 3, exclusiveMinimum: 3, maximum: 2.5e1, exclusiveMaximum: 30 }, { type: 'number', minimum: -1.5, exclusiveMinimum: -2, maximum: -1 }] },
    accept: ['4', '25', '-1.5', '-1', '-1.25'],
    reject: ['3', '26', '-1.6', '-0.5', '-2'],
  },
  'integer minimum only': {
    schema: { type: 'integer', minimum: 95 },
    accept: ['95', '100', '99999999', '9'.repeat(200)],
    reject: ['94', '9', '-95', '1'.repeat(201)],
  },
  'integer maximum only': { schema: { type: 'integer', maximum: -95 }, accept: ['-95', '-100', '-99999999'], reject: ['-94', '0', '95'] },
  'annotations ignored': {
    schema: { title: 't', description: 'd', default: 1, examples: [1], $comment: 'c', deprecated: true, readOnly: true, writeOnly: false, type: 'integer' },
    accept: ['1'],
    reject: ['"1"'],
  },
  'whitespace is bounded': {
    schema: { type: 'array', items: { type: 'integer' } },
    accept: [`[\n${' '.repeat(WS_MAX_INDENT)}1]`, '[\n\t1]', '[1 ,\n\t2 ]'],
    reject: [`[\n${' '.repeat(WS_MAX_INDENT + 1)}1]`, '[  1]', '[\t1]', '[\n\n1]', '[\r\n1]', ' [1]', '[1] '],
  },
};

describe('structured output: JSON schema reference cases', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(name, () => {
      const ir = compileJsonSchema(c.schema);
      const valid = validatorFor(c.schema);
      for (const text of c.accept) {
        expect(recognizes(ir, text), `should accept ${JSON.stringify(text)}`).toBe(true);
        expect(valid(JSON.parse(text)), `${text} is valid`).toBe(true);
      }
      for (const text of c.reject) expect(recognizes(ir, text), `should reject ${JSON.stringify(text)}`).toBe(false);
    });
  }

  it('json_object accepts any object and nothing else', () => {
    const ir = jsonObjectGrammar();
    for (const t of ['{}', '{"a":[1,{"b":null}],"c":"d"}', '{ "x" : -1.5e3 }']) expect(recognizes(ir, t), t).toBe(true);
    for (const t of ['[]', '1', '"{}"', '{"a"}', '{a:1}']) expect(recognizes(ir, t), t).toBe(false);
  });

  it('the same schema always compiles to the same grammar', () => {
    for (const schema of [...Object.values(CASES).map((c) => c.schema), ...Object.values(PROPERTY_SCHEMAS)]) {
      expect(JSON.stringify(compileJsonSchema(structuredClone(schema)))).toBe(JSON.stringify(compileJsonSchema(schema)));
    }
  });

  it('large enums and objects stay narrow: alternatives are told apart as the text goes', () => {
    const words = Array.from({ length: 3000 }, (_, i) => `w${i}_${(i * 7919) % 1000}`);
    const props = Object.fromEntries(words.slice(0, 400).map((w) => [w, { type: 'integer' }]));
    const cases: Array<[unknown, string, number]> = [
      // An enum is a trie: a handful of items whatever the number of values.
      [{ enum: words }, JSON.stringify(words[1234]), 50],
      // Optional members: a few key tries over blocks of the members that may come next (O(log n)).
      [{ type: 'object', properties: props }, JSON.stringify({ [words[3]]: 1, [words[200]]: 2, [words[399]]: 3 }), 60],
    ];
    for (const [schema, text, most] of cases) {
      const r = GrammarRecognizer.of(compileJsonSchema(schema));
      let widest = 0;
      for (const c of text) {
        expect(r.feed(c)).toBe(true);
        widest = Math.max(widest, r.width);
      }
      expect(r.accepted).toBe(true);
      expect(widest).toBeLessThan(most);
    }
  });

  it('shares one rule per distinct sub-schema', () => {
    /** The distinct rules that member values (what follows `:` and whitespace) refer to. */
    const valueRules = (schema: (i: number) => unknown) => {
      const ir = compileJsonSchema({ type: 'object', properties: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`p${i}`, schema(i)])) });
      const out = new Set<number>();
      for (const alt of ir.rules.flat()) {
        alt.forEach((it, k) => {
          const value = alt[k + 2];
          if ('lit' in it && it.lit === ':' && value && 'ref' in value) out.add(value.ref);
        });
      }
      return out.size;
    };
    const leaf = (n: number) => ({ type: 'object', properties: { s: { type: 'string', maxLength: n } } });
    expect(valueRules(() => leaf(30))).toBe(2); // the leaf object and its string, once for all 8 members
    expect(valueRules((i) => leaf(30 + i))).toBe(16);
  });
});
