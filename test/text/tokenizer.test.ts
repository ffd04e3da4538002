import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { QwenVLError } from '../../lib/errors.js';
import { QwenTokenizer } from '../../lib/text/tokenizer.js';
import { MergeTable, bpeMergeHeap, bpeMergeSimple } from '../../lib/text/bpe.js';
import { incompleteUtf8Tail } from '../../lib/text/utf8.js';
import { checkpointOf, fixtureCases, fixtureFamilies, readInt64Rows } from './fixture-data.js';

const families = fixtureFamilies();
const tokenizers = new Map<string, QwenTokenizer>();

beforeAll(async () => {
  for (const f of families) tokenizers.set(f, await QwenTokenizer.load(checkpointOf(f)));
});

describe('fixtures: ids, tokens and decoding equal transformers output', () => {
  it('has fixtures', () => expect(families.length).toBeGreaterThan(0));
  for (const family of families) {
    describe(family, () => {
      for (const c of fixtureCases(family)) {
        it(c.name, () => {
          const tok = tokenizers.get(family)!;
          const fromTensors = readInt64Rows(join(c.dir, 'tensors.safetensors'), 'input_ids');
          expect(fromTensors).toEqual(c.meta.input_ids);
          c.meta.expanded_prompt_texts.forEach((text, b) => {
            // The expanded text (padding included) re-encodes to exactly the processor's ids.
            expect(tok.encode(text)).toEqual(c.meta.input_ids[b]);
            expect(c.meta.input_ids[b].map((id) => tok.idToToken(id))).toEqual(c.meta.input_tokens[b]);
            expect(c.meta.input_tokens[b].map((t) => tok.tokenToId(t))).toEqual(c.meta.input_ids[b]);
            expect(tok.decode(c.meta.input_ids[b])).toBe(text);
          });
          c.meta.generated_ids.forEach((ids, b) => {
            expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(c.meta.generated_text[b]);
            expect(tok.decode(ids)).toBe(c.meta.generated_text_with_special[b]);
          });
        });
      }
    });
  }
});

describe('special tokens and vocabulary', () => {
  it('exposes the Qwen-VL special ids', () => {
    for (const family of families) {
      const tok = tokenizers.get(family)!;
      expect(tok.specialIds).toMatchObject({
        eos: 151645,
        pad: 151643,
        endOfText: 151643,
        imStart: 151644,
        imEnd: 151645,
        visionStart: 151652,
        visionEnd: 151653,
        visionPad: 151654,
        imagePad: 151655,
        videoPad: 151656,
      });
      expect(tok.specialIds.bos).toBeUndefined();
      expect(tok.baseVocabSize).toBe(151643);
      expect(tok.vocabSize).toBe(151643 + tok.addedTokens.length);
      expect(tok.idToToken(151655)).toBe('<|image_pad|>');
      expect(tok.isSpecial(151645)).toBe(true);
      expect(tok.specialTokensMap.eos_token).toBe('<|im_end|>');
      expect(tok.specialTokensMap.pad_token).toBe('<|endoftext|>');
      expect(tok.specialTokensMap.bos_token).toBeUndefined();
      expect(tok.paddingSide).toBe('right');
    }
    const q3 = tokenizers.get('qwen3-vl');
    if (q3) {
      expect(q3.specialIds.thinkStart).toBe(151667);
      expect(q3.isSpecial(151667)).toBe(false); // <think> is an added token, not a special one
      expect(q3.decode([151667, 151645], { skipSpecialTokens: true })).toBe('<think>');
    }
  });

  it('recognises added tokens in text, unless splitSpecialTokens', () => {
    const tok = tokenizers.get(families[0])!;
    expect(tok.encode('a<|im_end|>b')).toEqual([64, 151645, 65]);
    const plain = tok.encode('a<|im_end|>b', { splitSpecialTokens: true });
    expect(plain).not.toContain(151645);
    expect(tok.decode(plain)).toBe('a<|im_end|>b');
    expect(tok.encode('')).toEqual([]);
  });

  it('unknown ids decode to nothing, skipSpecialTokens drops special ids', () => {
    const tok = tokenizers.get(families[0])!;
    expect(tok.decode([9707, 151900, 999999, 0])).toBe('Hello!');
    expect(tok.decode([151644, 9707, 151645, 151643], { skipSpecialTokens: true })).toBe('Hello');
    expect(tok.idToToken(-1)).toBeUndefined();
    expect(tok.tokenToId('no such token')).toBeUndefined();
  });
});

// Expected ids of these strings were produced by a separate Python re-implementation of transformers'
// Qwen2Tokenizer (Python `regex` module for the split pattern, unicodedata NFC, textbook GPT-2 BPE loop) over the
// same tokenizer.json; they pin down the places where JavaScript regex semantics differ from Python's.
const PY_REFERENCE: [string, number[]][] = [
  ['!\u0085!', [0, 126, 227, 0]], // U+0085 is whitespace for Python (not for JS \s): splits the punctuation run
  ['!\ufeff!', [0, 3225, 0]], // U+FEFF is not whitespace for Python (JS \s says it is)
  ['a\u0085\u0085 b', [64, 126, 227, 126, 227, 293]],
  ['x \ufeff y', [87, 75780, 379]],
  ["I'M FINE, he'S here '\u017f'", [40, 27603, 434, 3981, 11, 566, 13272, 1588, 364, 144815, 6]],
  ["don't won't y'all WE'LL", [15007, 944, 2765, 944, 379, 64848, 19677, 6, 4086]],
  ['12345', [16, 17, 18, 19, 20]],
  ['3.14159', [18, 13, 16, 19, 16, 20, 24]],
  ['  leading and trailing  ', [220, 6388, 323, 27748, 256]],
  ['tabs\t\tand\n\n\nnewlines\r\n', [30993, 197, 52477, 1406, 931, 7969, 319]],
  ['    def f(x):\n        return x  # comment\n', [262, 707, 282, 2075, 982, 286, 470, 856, 220, 671, 3980, 198]],
  ['Hello世界！你好，世界。', [9707, 99489, 6313, 108386, 3837, 99489, 1773]],
  [
    '👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👍🏽',
    [145367, 378, 235, 145233, 378, 235, 145665, 378, 235, 145988, 2997, 11162, 237, 111, 30543, 378, 235, 145354, 5181, 61804, 235, 145375],
  ],
  ['مرحبا بالعالم', [124122, 29825, 124671, 124476, 129634]],
  ['Привет, мир!', [53645, 26991, 8178, 11, 137144, 0]],
  ['e\u0301 vs \u00e9', [963, 6165, 3958]], // NFC first: e + combining acute == é
  ['\u212b\u2126', [144044, 144572]],
  ['a   \n   b', [64, 5872, 256, 293]],
  ['<|im_start|>user\nhi<|im_end|>', [151644, 872, 198, 6023, 151645]],
  ['<|im_start|user', [27, 91, 318, 4906, 91, 872]],
  ['٣٤٥ and ½ and ²', [149, 96, 149, 97, 149, 98, 323, 220, 26062, 323, 220, 29456]],
];

describe('hand-checkable facts', () => {
  it('the sample of notes/toolchain.md §9', () => {
    for (const family of families) {
      const tok = tokenizers.get(family)!;
      const s = '<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Describe this image. 你好 123<|im_end|>\n';
      expect(tok.encode(s)).toEqual([151644, 872, 198, 151652, 151655, 151655, 151653, 74785, 419, 2168, 13, 220, 108386, 220, 16, 17, 18, 151645, 198]);
    }
  });

  it('digits are single tokens, one per digit', () => {
    const tok = tokenizers.get(families[0])!;
    const digits = '0123456789';
    const ids = tok.encode('9876543210 2024');
    expect(ids.length).toBe(10 + 1 + 4);
    for (const d of digits) expect(tok.encode(d)).toEqual([tok.tokenToId(d)!]);
    expect(tok.encode('2024')).toEqual([...'2024'].map((d) => tok.tokenToId(d)));
  });

  it('newline runs merge as in the vocabulary', () => {
    const tok = tokenizers.get(families[0])!;
    expect(tok.encode('\n')).toEqual([198]);
    expect(tok.encode('\n\n')).toEqual([tok.tokenToId('ĊĊ')]);
    expect(tok.tokenToId('ĊĊ')).toBe(271);
    expect(tok.encode(' ')).toEqual([220]);
  });

  it('matches the Python reference on regex edge cases', () => {
    for (const family of families) {
      const tok = tokenizers.get(family)!;
      for (const [s, ids] of PY_REFERENCE) expect(tok.encode(s), JSON.stringify(s)).toEqual(ids);
    }
  });
});

/** A deterministic corpus mixing scripts, emoji (ZWJ, flags, skin tones), whitespace runs, code and digits. */
function corpus(): string[] {
  let state = 0x9e3779b9;
  const rnd = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const atoms = [
    'hello', ' world', 'Hello', "'s", "'S", "'ll", "'Re", 'ſ', ' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', ' \n ', '\u00a0',
    '\u0085', '\ufeff', '\u3000', '\u2028', '123', '4567890', '١٢٣', '½', '你好', '世界', '，', '。', '日本語', 'カタカナ', '한국어',
    'Привет', 'مرحبا', 'שלום', 'नमस्ते', 'ไทย', '😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇺🇸', 'é', 'e\u0301', '\u212b', 'ﬁ', '\u0000',
    '\u0007', '\u007f', '\u00ad', '\u200b', '\u200d', 'function f(x) { return x*2; }', '    if (a) {\n        b();\n    }',
    '<|im_start|>', '<|im_end|>', '<|image_pad|>', '<tool_call>', '<|im_start', '|>', '!!!', '...', '?!', '---', 'http://x.y/z?q=1&r=2',
    "don't", "I'm", "we've", 'CAFÉ', 'naïve', 'ß', 'İ', '𝔘𝔫𝔦', '𠀀𠀁',
  ];
  const out: string[] = [];
  for (let i = 0; i < 1500; i++) {
    let s = '';
    const n = 1 + Math.floor(rnd() * 10);
    for (let j = 0; j < n; j++) s += atoms[Math.floor(rnd() * atoms.length)];
    out.push(s);
  }
  for (let i = 0; i < 500; i++) {
    let s = '';
    const n = 1 + Math.floor(rnd() * 16);
    for (let j = 0; j < n; j++) {
      let c: number;
      do c = rnd() < 0.8 ? Math.floor(rnd() * 0x3000) : Math.floor(rnd() * 0x110000);
      while (c >= 0xd800 && c <= 0xdfff);
      s += String.fromCodePoint(c);
    }
    out.push(s);
  }
  out.push(' '.repeat(3000), 'a'.repeat(2000), '\n'.repeat(700), ' \t'.repeat(400), '9'.repeat(300), 'ab'.repeat(900), '😀'.repeat(200));
  return out;
}

describe('broad corpus', () => {
  const texts = corpus();

  it('round-trips: decode(encode(s)) == NFC(s)', () => {
    const tok = tokenizers.get(families[0])!;
    for (const s of texts) expect(tok.decode(tok.encode(s))).toBe(s.normalize('NFC'));
  });

  it('agrees with @huggingface/tokenizers (an independent implementation of the same tokenizer.json)', () => {
    const family = families[families.length - 1];
    const ck = checkpointOf(family);
    const hf = new Tokenizer(
      JSON.parse(readFileSync(join(ck, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(ck, 'tokenizer_config.json'), 'utf8')),
    );
    const tok = tokenizers.get(family)!;
    const mismatches: string[] = [];
    for (const s of texts) {
      const ours = tok.encode(s);
      const theirs = hf.encode(s, { add_special_tokens: false }).ids;
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) mismatches.push(JSON.stringify(s));
    }
    expect(mismatches).toEqual([]);
  });
});

describe('BPE merge loop', () => {
  it('the heap version equals the textbook loop on random merge tables', () => {
    let state = 12345;
    const rnd = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    for (let trial = 0; trial < 200; trial++) {
      const alphabet = 2 + rnd(4);
      const table = new MergeTable();
      let nextId = alphabet;
      const ids: number[] = Array.from({ length: alphabet }, (_, i) => i);
      const nMerges = 1 + rnd(40);
      for (let r = 0; r < nMerges; r++) {
        const a = ids[rnd(ids.length)];
        const b = ids[rnd(ids.length)];
        if (table.lookup(a, b) >= 0) continue;
        table.add(a, b, r, nextId);
        ids.push(nextId++);
      }
      const word = Array.from({ length: 1 + rnd(120) }, () => rnd(alphabet));
      expect(bpeMergeHeap(word, table)).toEqual(bpeMergeSimple(word, table));
    }
  });
});

describe('stream decoder', () => {
  it('never splits a character and concatenates to decode()', () => {
    const tok = tokenizers.get(families[0])!;
    // ZWJ (E2 80 8D) is split over two byte-level tokens: 378 = E2 80, 235 = 8D.
    const ids = tok.encode('👨‍👩 ٣');
    expect(ids).toEqual([145367, 378, 235, 145233, 220, 149, 96]);
    const d = tok.createStreamDecoder();
    const chunks = ids.map((id) => d.push(id));
    expect(chunks).toEqual(['👨', '', '\u200d', '👩', ' ', '', '٣']);
    expect(d.flush()).toBe('');
  });

  it('matches decode() on the corpus and on fixture generations, with and without special tokens', () => {
    const tok = tokenizers.get(families[0])!;
    const streams: number[][] = corpus().slice(0, 400).map((s) => tok.encode(s));
    for (const family of families) for (const c of fixtureCases(family)) streams.push(...c.meta.generated_ids, ...c.meta.input_ids);
    streams.push([145367, 378], [149], [378, 151645, 235], [149, 149, 96]);
    for (const skipSpecialTokens of [false, true]) {
      for (const ids of streams) {
        const d = tok.createStreamDecoder({ skipSpecialTokens });
        let text = '';
        for (const id of ids) {
          const chunk = d.push(id);
          // a chunk never ends in the first half of a surrogate pair
          expect(/[\ud800-\udbff]$/.test(chunk)).toBe(false);
          text += chunk;
        }
        text += d.flush();
        expect(text).toBe(tok.decode(ids, { skipSpecialTokens }));
      }
    }
  });

  it('flushes an unfinished character as U+FFFD', () => {
    const tok = tokenizers.get(families[0])!;
    const d = tok.createStreamDecoder();
    expect(d.push(378)).toBe('');
    expect(d.flush()).toBe('\ufffd');
    expect(d.push(9707)).toBe('Hello');
  });

  it('holds back only valid prefixes', () => {
    const b = (...x: number[]) => new Uint8Array(x);
    expect(incompleteUtf8Tail(b(0x41, 0xe2, 0x80), 3)).toBe(2);
    expect(incompleteUtf8Tail(b(0xf0, 0x9f, 0x98), 3)).toBe(3);
    expect(incompleteUtf8Tail(b(0xf0, 0x80), 2)).toBe(0); // F0 80 can never be valid
    expect(incompleteUtf8Tail(b(0xed, 0xa0), 2)).toBe(0); // surrogate range
    expect(incompleteUtf8Tail(b(0xe2, 0x80, 0x8d), 3)).toBe(0);
    expect(incompleteUtf8Tail(b(0xc0), 1)).toBe(0);
    expect(incompleteUtf8Tail(b(0x80, 0x80, 0x80), 3)).toBe(0);
  });
});

describe('loading errors', () => {
  it('a missing tokenizer.json is E_MODEL_FORMAT naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-tok-'));
    try {
      const err = await QwenTokenizer.load(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QwenVLError);
      expect((err as QwenVLError).code).toBe('E_MODEL_FORMAT');
      expect((err as QwenVLError).message).toContain(join(dir, 'tokenizer.json'));
      expect(() => QwenTokenizer.loadSync(dir)).toThrow(/tokenizer\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('invalid JSON and a malformed model are E_MODEL_FORMAT naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-tok-'));
    try {
      writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
      const err = (await QwenTokenizer.load(dir).catch((e: unknown) => e)) as QwenVLError;
      expect(err.code).toBe('E_MODEL_FORMAT');
      expect(err.message).toMatch(/tokenizer\.json: invalid JSON/);

      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: [], merges: [] } }));
      const err2 = (await QwenTokenizer.load(dir).catch((e: unknown) => e)) as QwenVLError;
      expect(err2.code).toBe('E_MODEL_FORMAT');
      expect(err2.message).toMatch(/tokenizer\.json: model\.vocab/);

      copyFileSync(join(checkpointOf(families[0]), 'tokenizer.json'), join(dir, 'tokenizer.json'));
      writeFileSync(join(dir, 'tokenizer_config.json'), 'not json');
      const err3 = (await QwenTokenizer.load(dir).catch((e: unknown) => e)) as QwenVLError;
      expect(err3.code).toBe('E_MODEL_FORMAT');
      expect(err3.message).toContain('tokenizer_config.json');

      rmSync(join(dir, 'tokenizer_config.json'));
      const bare = await QwenTokenizer.load(dir); // tokenizer_config.json is optional
      expect(bare.specialIds.eos).toBeUndefined();
      expect(bare.specialIds.imagePad).toBe(151655);
      expect(bare.isSpecial(151643)).toBe(true); // special flag of tokenizer.json's added_tokens
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unsupported pre-tokenizer is E_UNSUPPORTED', () => {
    const json = JSON.parse(readFileSync(join(checkpointOf(families[0]), 'tokenizer.json'), 'utf8'));
    json.pre_tokenizer = { type: 'Whitespace' };
    try {
      QwenTokenizer.fromJSON(json, {}, { tokenizerFile: 'x/tokenizer.json' });
      expect.unreachable();
    } catch (e) {
      expect((e as QwenVLError).code).toBe('E_UNSUPPORTED');
      expect((e as QwenVLError).message).toContain('x/tokenizer.json');
    }
  });
});
