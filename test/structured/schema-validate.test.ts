import { describe, expect, it } from 'vitest';
import { compileJsonSchema } from '../../lib/structured/json-schema.js';
import { SchemaValidator } from '../../lib/structured/schema-validate.js';
import { resolveRef } from '../../lib/structured/schema-ref.js';
import type { Schema } from '../../lib/structured/schema-keywords.js';
import { randomSentence, seededRandom } from '../helpers/grammar-sentences.js';
import { nonFinite, validatorFor } from '../helpers/json-schema-validator.js';
import { PROPERTY_SCHEMAS } from './schemas.js';

/** Values to try: valid ones (the schema's own sentences), near misses (edited ones), and any JSON. */
function candidates(schema: unknown, seed: number): unknown[] {
  const rnd = seededRandom(seed);
  const own = compileJsonSchema(schema);
  const any = compileJsonSchema({});
  const out: unknown[] = [];
  for (let i = 0; i < 60; i++) {
    const text = randomSentence(own, rnd, { maxDepth: 30, maxLength: 150 });
    out.push(JSON.parse(text));
    for (let k = 0; k < 3; k++) {
      const at = Math.floor(rnd() * text.length);
      const edited = text.slice(0, at) + '0a"[{-1.5}],:'.charAt(Math.floor(rnd() * 13)) + text.slice(at + 1);
      try {
        out.push(JSON.parse(edited));
      } catch {
        // Not JSON: nothing to validate.
      }
    }
    out.push(JSON.parse(randomSentence(any, rnd, { maxDepth: 8, maxLength: 60 })));
  }
  return out.filter((v) => !nonFinite(v));
}

describe('structured output: the enum filter validator agrees with ajv', () => {
  for (const [name, schema] of Object.entries(PROPERTY_SCHEMAS)) {
    it(name, () => {
      const mine = new SchemaValidator((target, path) => resolveRef(schema as Schema, target, path));
      const ajv = validatorFor(schema);
      // Formats it checks through their grammar's patterns: a part of some formats, so it may only say less.
      const exact = !JSON.stringify(schema).includes('"format"');
      let validSeen = 0;
      for (const v of candidates(schema, name.length * 31 + 1)) {
        const got = mine.valid(v, schema as Schema, '#');
        const want = ajv(v);
        if (want) validSeen++;
        if (exact || got) expect(got, `${JSON.stringify(v)}`).toBe(want);
      }
      expect(validSeen).toBeGreaterThan(0);
    });
  }
});
