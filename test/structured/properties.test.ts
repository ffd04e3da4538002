import { describe, expect, it } from 'vitest';
import { compileJsonSchema, jsonObjectGrammar } from '../../lib/structured/json-schema.js';
import { recognizes } from '../../lib/structured/recognize.js';
import { checkGrammar } from '../../lib/structured/check.js';
import { randomSentence, seededRandom } from '../helpers/grammar-sentences.js';
import { nonFinite, validatorFor } from '../helpers/json-schema-validator.js';
import { PROPERTY_SCHEMAS } from './schemas.js';

const SENTENCES = 150;
const ONE_VALUE = ['null', 'constObject', 'enumFiltered'];

describe('structured output: random sentences of each compiled schema are valid JSON of the schema (ajv)', () => {
  for (const [name, schema] of Object.entries(PROPERTY_SCHEMAS)) {
    it(name, () => {
      const ir = compileJsonSchema(schema);
      checkGrammar(ir);
      const valid = validatorFor(schema);
      const rnd = seededRandom(name.length * 7919 + 17);
      const distinct = new Set<string>();
      for (let i = 0; i < SENTENCES; i++) {
        const text = randomSentence(ir, rnd, { maxDepth: 40, maxLength: 300 });
        distinct.add(text);
        let value: unknown;
        expect(() => (value = JSON.parse(text)), text).not.toThrow();
        expect(valid(value), `${JSON.stringify(text)} is not valid`).toBe(true);
        expect(nonFinite(value), `${JSON.stringify(text)} holds a number beyond doubles`).toBe(false);
        expect(recognizes(ir, text), text).toBe(true);
      }
      // The generator explores: a grammar with one sentence is only right for one-value schemas.
      if (!ONE_VALUE.includes(name)) expect(distinct.size).toBeGreaterThan(1);
    });
  }

  it('json_object', () => {
    const ir = jsonObjectGrammar();
    checkGrammar(ir);
    const rnd = seededRandom(5);
    for (let i = 0; i < SENTENCES; i++) {
      const text = randomSentence(ir, rnd, { maxDepth: 40, maxLength: 300 });
      const value = JSON.parse(text) as unknown;
      expect(typeof value === 'object' && value !== null && !Array.isArray(value), text).toBe(true);
    }
  });
});
