import { describe, expect, it } from 'vitest';
import { compileJsonSchema } from '../../lib/structured/json-schema.js';
import { recognizes } from '../../lib/structured/recognize.js';
import { randomSentence, seededRandom } from '../helpers/grammar-sentences.js';
import { validatorFor } from '../helpers/json-schema-validator.js';
import { PROPERTY_SCHEMAS } from './schemas.js';

/** Random strings over an alphabet, lengths 0..maxLength. */
function randomStrings(alphabet: string[], count: number, maxLength: number, seed: number): string[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: Math.floor(rnd() * (maxLength + 1)) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''),
  );
}

const PATTERNS: Array<[string, string]> = [
  ['^[A-C]{2,3}-\\d{2}(x|yz)?$', 'ABCDxyz-0129 '],
  ['ab+c', 'abcx'],
  ['^(?:foo|ba[rz])', 'fobarz'],
  ['a.c$', 'ac\n\r.é'],
  ['^[^a-c]*$', 'abcdé"\\\n'],
  ['^\\w+\\s?\\W$', 'a_9 \t!-é'],
  ['^(?<y>\\d{2})(?:-\\k?)?', '12-k?'],
  ['^a{2}b{1,}c{0,2}d*?$', 'abcd'],
  ['^["\\\\\\n]+$', '"\\\nn'],
  ['x|^y|z$', 'xyza'],
  ['^$', 'a'],
  ['^\\u00e9\\x41[\\d.]?$', 'éA1.'],
  ['^\\uD83D\\uDE00+[\\u{1F600}-\\u{1F602}]$', '😀😁😂😃a'],
];

describe('structured output: grammars agree with their reference semantics', () => {
  for (const [pattern, chars] of PATTERNS) {
    it(`pattern ${pattern} matches exactly what RegExp(pattern, "u") matches`, () => {
      let ir;
      try {
        ir = compileJsonSchema({ type: 'string', pattern });
      } catch (e) {
        // \k outside a named backreference is a syntax error in u-mode: the compiler says so.
        expect(pattern).toContain('\\k');
        expect((e as { code: string }).code).toBe('E_INPUT');
        return;
      }
      const re = new RegExp(pattern, 'u');
      let matched = 0;
      for (const s of randomStrings(Array.from(chars), 600, 8, pattern.length)) {
        const want = re.test(s);
        if (want) matched++;
        expect(recognizes(ir, JSON.stringify(s)), `${JSON.stringify(s)}`).toBe(want);
      }
      if (pattern !== '^$') expect(matched).toBeGreaterThan(0);
    });
  }

  it('integer ranges accept exactly the integers in range', () => {
    const ranges: Array<[number | undefined, number | undefined]> = [
      [-37, 1205],
      [0, 0],
      [1, 9],
      [10, 99],
      [-1, -1],
      [-1000, -999],
      [17, undefined],
      [undefined, -3],
      [0, undefined],
      [undefined, 0],
      [-5, 10],
      [99, 1001],
    ];
    for (const [lo, hi] of ranges) {
      const ir = compileJsonSchema({ type: 'integer', minimum: lo, maximum: hi });
      for (let n = -1300; n <= 1300; n++) {
        const want = (lo === undefined || n >= lo) && (hi === undefined || n <= hi);
        expect(recognizes(ir, String(n)), `${n} in [${lo}, ${hi}]`).toBe(want);
      }
      for (const n of [123456n, -123456n, 10n ** 30n, -(10n ** 30n)]) {
        const want = (lo === undefined || n >= BigInt(lo)) && (hi === undefined || n <= BigInt(hi));
        expect(recognizes(ir, String(n)), `${n} in [${lo}, ${hi}]`).toBe(want);
      }
    }
  });

  it('bounded numbers accept exactly the texts inside the bounds (up to 15 digits)', () => {
    const cases: Array<Record<string, number>> = [
      { minimum: 0, maximum: 1 },
      { exclusiveMinimum: 0, exclusiveMaximum: 1 },
      { minimum: -2.5, exclusiveMaximum: 7.125 },
      { exclusiveMinimum: -1e-3 },
      { maximum: -0.1 },
      { minimum: 0.1, maximum: 0.3 },
    ];
    const rnd = seededRandom(11);
    const digits = () => String(Math.floor(rnd() * 10 ** Math.floor(rnd() * 4)));
    for (const bounds of cases) {
      const ir = compileJsonSchema({ type: 'number', ...bounds });
      const valid = validatorFor({ type: 'number', ...bounds });
      let accepted = 0;
      for (let i = 0; i < 1500; i++) {
        const text = `${rnd() < 0.4 ? '-' : ''}${digits()}${rnd() < 0.7 ? `.${digits()}` : ''}`;
        if (!/^-?(0|[1-9]\d*)(\.\d+)?$/.test(text)) continue;
        const ok = valid(Number(text));
        const got = recognizes(ir, text);
        if (got) accepted++;
        // Sound always; complete for texts of at most 15 digits, negative zero aside (the documented policy).
        const negativeZero = text.startsWith('-') && Number(text) === 0;
        if (got || (text.replace(/\D/g, '').length <= 15 && !negativeZero)) expect(got, `${text} with ${JSON.stringify(bounds)}`).toBe(ok);
      }
      expect(accepted).toBeGreaterThan(10);
    }
  });

  it('string lengths: a string is accepted exactly when its code point count is in range', () => {
    const ir = compileJsonSchema({ type: 'string', minLength: 2, maxLength: 4 });
    for (const s of randomStrings(['a', '"', '\\', '\n', 'é', '😀', '\u0001'], 400, 6, 3)) {
      const n = Array.from(s).length;
      expect(recognizes(ir, JSON.stringify(s)), JSON.stringify(s)).toBe(n >= 2 && n <= 4);
    }
  });

  it('edited sentences the grammar still accepts are valid too (soundness off the generator path)', () => {
    const pool = Array.from('0123456789-+.eE"\\{}[],: \ntruefalsnul abxé😀u');
    for (const [name, schema] of Object.entries(PROPERTY_SCHEMAS)) {
      const ir = compileJsonSchema(schema);
      const valid = validatorFor(schema);
      const rnd = seededRandom(name.length);
      for (let i = 0; i < 40; i++) {
        const chars = Array.from(randomSentence(ir, rnd, { maxDepth: 30, maxLength: 120 }));
        for (let edit = 0; edit < 6; edit++) {
          const at = Math.floor(rnd() * (chars.length + 1));
          const c = pool[Math.floor(rnd() * pool.length)];
          const mutant = [...chars];
          const kind = rnd();
          if (kind < 0.33) mutant.splice(at, 0, c);
          else if (kind < 0.66) mutant.splice(at, 1);
          else mutant.splice(at, 1, c);
          const text = mutant.join('');
          if (!recognizes(ir, text)) continue;
          let value: unknown;
          expect(() => (value = JSON.parse(text)), `${name}: ${JSON.stringify(text)}`).not.toThrow();
          expect(valid(value), `${name}: ${JSON.stringify(text)}`).toBe(true);
        }
      }
    }
  });
});
