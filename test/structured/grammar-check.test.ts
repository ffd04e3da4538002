import { describe, expect, it } from 'vitest';
import { checkGrammar, leftRecursion } from '../../lib/structured/check.js';
import { GrammarRecognizer, recognizes } from '../../lib/structured/recognize.js';
import { compileJsonSchema } from '../../lib/structured/json-schema.js';
import type { GrammarIR } from '../../lib/structured/grammar-ir.js';
import { PROPERTY_SCHEMAS } from './schemas.js';

describe('structured output: grammar IR checks', () => {
  it('finds left recursion, direct, indirect and through nullable prefixes', () => {
    expect(leftRecursion({ root: 0, rules: [[[{ ref: 0 }, { lit: 'a' }], [{ lit: 'b' }]]] })).toEqual([0, 0]);
    expect(leftRecursion({ root: 0, rules: [[[{ ref: 1 }]], [[{ ref: 0 }, { lit: 'x' }], [{ lit: 'y' }]]] })).toEqual([0, 1, 0]);
    // rule 1 is nullable, so rule 0 may reach itself after it without consuming text.
    const viaNullable: GrammarIR = { root: 0, rules: [[[{ ref: 1 }, { ref: 0 }], [{ lit: 'z' }]], [[], [{ lit: 'q' }]]] };
    expect(leftRecursion(viaNullable)).toEqual([0, 0]);
    // Right recursion is fine.
    expect(leftRecursion({ root: 0, rules: [[[{ lit: 'a' }, { ref: 0 }], []]] })).toBeNull();
  });

  it('rejects broken IR with E_INPUT naming the rule', () => {
    const bad: Array<[GrammarIR, string]> = [
      [{ root: 1, rules: [[[]]] }, 'root 1'],
      [{ root: 0, rules: [[]] }, 'rule 0 has no alternatives'],
      [{ root: 0, rules: [[[{ lit: '' }]]] }, 'rule 0 has an empty literal'],
      [{ root: 0, rules: [[[{ cls: [[5, 4]] }]]] }, 'rule 0 has a bad code point range [5, 4]'],
      [{ root: 0, rules: [[[{ cls: [[0, 0x110000]] }]]] }, 'bad code point range'],
      [{ root: 0, rules: [[[{ ref: 3 }]]] }, 'rule 0 refers to rule 3'],
      [{ root: 0, rules: [[[{ ref: 0 }]]] }, 'rule 0 is left recursive'],
    ];
    for (const [ir, text] of bad) {
      expect(() => checkGrammar(ir)).toThrow(expect.objectContaining({ code: 'E_INPUT', message: expect.stringContaining(text) }));
    }
  });

  it('every compiled grammar keeps the contract (no left recursion, valid items)', () => {
    for (const schema of Object.values(PROPERTY_SCHEMAS)) expect(() => checkGrammar(compileJsonSchema(schema))).not.toThrow();
  });
});

describe('structured output: reference recognizer', () => {
  const ir = compileJsonSchema({ type: 'object', properties: { a: { enum: [1, 12] } }, required: ['a'], additionalProperties: false });

  it('tracks prefixes: viable, complete, and whether anything may follow', () => {
    const r = GrammarRecognizer.of(ir);
    expect(r.feed('{"a":1')).toBe(true);
    expect(r.accepted).toBe(false);
    expect(r.canContinue).toBe(true);
    const fork = r.fork();
    expect(fork.feed('3')).toBe(false);
    expect(fork.dead).toBe(true);
    expect(r.feed('2}')).toBe(true); // the fork did not disturb r
    expect(r.accepted).toBe(true);
    expect(r.canContinue).toBe(false);
  });

  it('handles nullable rules and surrogates', () => {
    const g: GrammarIR = { root: 0, rules: [[[{ ref: 1 }, { ref: 1 }, { lit: 'x' }]], [[], [{ cls: [[0xd000, 0xe000]] }]]] };
    expect(recognizes(g, 'x')).toBe(true);
    expect(recognizes(g, '\ud800x')).toBe(false); // a lone surrogate in a JS string is no code point of the class
    expect(recognizes(g, '\u{d7ff}\u{e000}x')).toBe(true);
    expect(recognizes({ root: 0, rules: [[[{ cls: [[0x61, 0x61]], neg: true }]]] }, 'b')).toBe(true);
    expect(recognizes({ root: 0, rules: [[[{ cls: [[0x61, 0x61]], neg: true }]]] }, 'a')).toBe(false);
  });
});
