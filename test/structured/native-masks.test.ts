// The native matcher on compiled schema grammars and the real Qwen vocabulary's bytes: the trie
// variant's masks (with and without the grammar's caches) equal the reference's at states reached
// by random sentences of each schema cut at any byte (mid-UTF-8 included); the sentences' own tokens
// are always allowed and the finished sentence accepts; and the typed errors of the native entry points.
import { beforeAll, describe, expect, it } from 'vitest';
import { QwenTokenizer, QwenVLError } from '../../lib/index.js';
import { native, type NativeHandle } from '../../lib/native/binding.js';
import { flattenGrammar } from '../../lib/structured/flatten-grammar.js';
import { compileJsonSchema, jsonObjectGrammar } from '../../lib/structured/json-schema.js';
import { randomSentence, seededRandom } from '../helpers/grammar-sentences.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { PROPERTY_SCHEMAS } from './schemas.js';

const V = 151936;
let tok: QwenTokenizer;
let vocab: NativeHandle;
let small: NativeHandle; // the first 5003 ids only: the reference is cheap enough for many states
beforeAll(async () => {
  tok = await QwenTokenizer.load(checkpointDir('qwen2-vl'));
  const { bytes, offsets } = tok.textTokenBytes(V);
  vocab = native.grammarVocabulary(bytes, offsets);
  const cut = 5003;
  small = native.grammarVocabulary(bytes.subarray(0, offsets[cut]), offsets.slice(0, cut + 1));
});

function typed(fn: () => unknown, code: string, message?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(QwenVLError);
  expect((err as QwenVLError).code).toBe(code);
  if (message) expect((err as QwenVLError).message).toMatch(message);
}

const has = (mask: Uint32Array, id: number) => ((mask[id >> 5] >>> (id & 31)) & 1) === 1;

describe('native token masks on schema grammars', () => {
  const cases: [string, unknown][] = [
    ['object', PROPERTY_SCHEMAS.object],
    ['stringLength', PROPERTY_SCHEMAS.stringLength],
    ['enumMixed', PROPERTY_SCHEMAS.enumMixed],
    ['integerRange', PROPERTY_SCHEMAS.integerRange],
    ['typeArray', PROPERTY_SCHEMAS.typeArray],
  ];
  for (const [name, schema] of cases) {
    it(`${name}: trie = reference at random cut points; the sentence's tokens are allowed`, () => {
      const ir = compileJsonSchema(schema);
      const grammar = native.grammarCompile(flattenGrammar(ir));
      const masks = native.grammarMasks(grammar, small);
      const fullMasks = native.grammarMasks(grammar, vocab);
      const rnd = seededRandom(name.length * 131 + 7);
      const enc = new TextEncoder();
      for (let s = 0; s < 4; s++) {
        const text = randomSentence(ir, rnd, { maxDepth: 20, maxLength: 80 });
        const bytes = enc.encode(text);
        for (const cut of [0, Math.floor(rnd() * bytes.length), bytes.length]) {
          const m = native.grammarMatcher(masks);
          expect(native.matcherAdvanceBytes(m, bytes.subarray(0, cut))).toBe(true);
          const want = native.matcherMask(m, 'reference');
          expect(native.matcherMask(m, 'trie', false)).toEqual(want);
          expect(native.matcherMask(m, 'trie')).toEqual(want); // cold cache for this state
          expect(native.matcherMask(m, 'trie')).toEqual(want); // warm
          native.disposeHandle(m);
        }
        // The sentence's own tokenization, token by token at the full vocabulary.
        const m = native.grammarMatcher(fullMasks);
        for (const id of tok.encode(text)) {
          expect(has(native.matcherMask(m), id), `${JSON.stringify(text)}: token ${id}`).toBe(true);
          expect(native.matcherAdvance(m, id)).toBe(true);
        }
        expect(native.matcherStatus(m).accepts).toBe(true);
        native.disposeHandle(m);
      }
      native.disposeHandle(masks);
      native.disposeHandle(fullMasks);
      native.disposeHandle(grammar);
    });
  }

  it('json_object at the full vocabulary: trie = reference at the start and inside a string', () => {
    const grammar = native.grammarCompile(flattenGrammar(jsonObjectGrammar()));
    const masks = native.grammarMasks(grammar, vocab);
    const m = native.grammarMatcher(masks);
    for (const piece of ['', '{"k', 'ey\\u00e']) {
      expect(native.matcherAdvanceBytes(m, new TextEncoder().encode(piece))).toBe(true);
      expect(native.matcherMask(m, 'trie')).toEqual(native.matcherMask(m, 'reference'));
    }
    // Special tokens are never text; a quote closes the key.
    const mask = native.matcherMask(m);
    expect(has(mask, tok.specialIds.imEnd!)).toBe(false);
    expect(native.matcherAdvance(m, tok.specialIds.imEnd!)).toBe(false);
    expect(native.matcherAdvanceBytes(m, new TextEncoder().encode('9"'))).toBe(true);
    const stats = native.grammarMasksStats(masks);
    expect(stats.positionMisses).toBeGreaterThan(0);
    native.disposeHandle(m);
    native.disposeHandle(masks);
    native.disposeHandle(grammar);
  });
});

describe('native grammar entry points: typed errors', () => {
  it('bad flattened IR is E_INPUT naming where', () => {
    typed(() => native.grammarCompile(Int32Array.from([1, 0, 1, 1, 2, 7])), 'E_INPUT', /rule 0, alternative 0, item 0: ref 7/);
    typed(() => native.grammarCompile(Int32Array.from([1, 0, 1, 2, 2, 0, 0, 1, 97])), 'E_INPUT', /left-recursive/);
    typed(() => native.grammarCompile(Int32Array.from([1, 0, 1])), 'E_INPUT', /ends early|overruns/);
    typed(() => native.grammarCompile(new Float32Array(3) as never), 'E_INPUT');
  });

  it('flattenGrammar checks the IR shape', () => {
    typed(() => flattenGrammar({ rules: [[[{ lit: '' }]]], root: 0 }), 'E_INPUT', /lit/);
    typed(() => flattenGrammar({ rules: [[[{ lit: '\ud800' }]]], root: 0 }), 'E_INPUT', /well-formed/);
    typed(() => flattenGrammar({ rules: [[[{ cls: [[1]] as never }]]], root: 0 }), 'E_INPUT', /\[lo, hi\]/);
    typed(() => flattenGrammar({ rules: [[[{ wat: 1 } as never]]], root: 0 }), 'E_INPUT');
    typed(() => flattenGrammar({ rules: 3 as never, root: 0 }), 'E_INPUT');
    expect(Array.from(flattenGrammar({ rules: [[[{ lit: 'é' }, { cls: [[97, 98]], neg: true }], []]], root: 0 }))).toEqual([
      1, 0, 2, 2, 0, 2, 0xc3, 0xa9, 1, 1, 1, 97, 98, 0,
    ]);
  });

  it('the vocabulary index built on a worker thread gives the same masks; its bad inputs are rejected, typed', async () => {
    const { bytes, offsets } = await tok.textTokenBytesAsync(V, 1000);
    const sync = tok.textTokenBytes(V);
    const same = (x: ArrayBufferView, y: ArrayBufferView) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    expect(same(bytes, sync.bytes) && same(offsets, sync.offsets)).toBe(true);
    const built = await native.grammarVocabularyAsync(bytes, offsets);
    const grammar = native.grammarCompile(flattenGrammar(compileJsonSchema({ type: 'object', properties: { a: { type: 'string', maxLength: 9 } } })));
    const [x, y] = [native.grammarMasks(grammar, built), native.grammarMasks(grammar, vocab)];
    const [mx, my] = [native.grammarMatcher(x), native.grammarMatcher(y)];
    for (const text of ['', '{"a":"x', '{"a":"12345678']) {
      const t = new TextEncoder().encode(text);
      expect(native.matcherAdvanceBytes(mx, t)).toBe(native.matcherAdvanceBytes(my, t));
      expect(Array.from(native.matcherMask(mx))).toEqual(Array.from(native.matcherMask(my, 'reference')));
    }
    for (const h of [mx, my, x, y, grammar, built]) native.disposeHandle(h);
    for (const [b, o, message] of [[new Uint8Array(2), Int32Array.from([0, 3]), /offsets/], [new Uint8Array(2), new Uint8Array(3), /Int32Array/]] as const) {
      // A bad argument throws at the call, a bad vocabulary rejects from the worker: both typed.
      const err = await Promise.resolve().then(() => native.grammarVocabularyAsync(b, o as Int32Array)).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(QwenVLError);
      expect((err as QwenVLError).code).toBe('E_INPUT');
      expect((err as QwenVLError).message).toMatch(message);
    }
  });

  it('handles of the wrong kind, bad vocabularies and mismatched sessions are refused', () => {
    typed(() => native.grammarMatcher(vocab), 'E_INPUT', /grammar masks/);
    typed(() => native.grammarVocabulary(new Uint8Array(2), Int32Array.from([0, 3])), 'E_INPUT', /offsets/);
    typed(() => native.grammarVocabulary(new Uint8Array(2), Int32Array.from([0, 2, 1, 2])), 'E_INPUT', /decrease/);
    const grammar = native.grammarCompile(flattenGrammar(jsonObjectGrammar()));
    const masks = native.grammarMasks(grammar, vocab);
    const m = native.grammarMatcher(masks);
    typed(() => native.matcherMask(m, 'nope'), 'E_INPUT', /variant/);
    native.disposeHandle(masks);
    native.disposeHandle(grammar);
    // The matcher keeps its grammar alive; a disposed handle is E_DISPOSED.
    expect(native.matcherMask(m).length).toBe(Math.ceil(V / 32));
    native.disposeHandle(m);
    typed(() => native.matcherMask(m), 'E_DISPOSED');
  });
});
