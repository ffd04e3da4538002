// The resumable JSON parser behind QwenTokenizer.load: exactly JSON.parse's value (key order, escapes,
// surrogates, numbers, "__proto__"), syntax errors with positions, and an event loop that keeps turning.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  JsonSliceError,
  decodeUtf8Steps,
  LARGE_OBJECT_KEYS,
  ownKeysSteps,
  parseJsonSliced,
  parseJsonSteps,
  parseJsonSync,
} from '../../lib/text/json-slices.js';
import { runToEnd } from '../../lib/text/slices.js';
import { FAMILIES, checkpointDir } from '../helpers/fixtures.js';

/** Same value, same key order, same -0: JSON.stringify alone would hide -0 and undefined-vs-missing. */
function expectSameAsJsonParse(text: string): void {
  const want = JSON.parse(text) as unknown;
  const got = parseJsonSync(text);
  expect(got).toStrictEqual(want);
  expect(JSON.stringify(got)).toBe(JSON.stringify(want));
}

describe('parseJsonSync', () => {
  it.each(FAMILIES)('gives JSON.parse’s value for the %s tokenizer.json and tokenizer_config.json', (family) => {
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      const text = readFileSync(join(checkpointDir(family), file), 'utf8');
      // Megabytes: a deep toStrictEqual takes seconds; the serialization shows values and key order.
      expect(JSON.stringify(parseJsonSync(text))).toBe(JSON.stringify(JSON.parse(text)));
    }
  });

  it('gives JSON.parse’s value on tricky documents', () => {
    const docs = [
      '0', '-0', '1', '-1.5e-3', '1E+2', '123456789012345678901234567890', '1e400', '-1e-400', '0.1', '2.5e308',
      'true', 'false', 'null', '""', '"x"', '  \t\r\n 7 \n',
      String.raw`"\" \\ \/ \b \f \n \r \t"`,
      String.raw`"\u0041\u00e9\u4f60\ud83d\ude00"`, // BMP, and an astral character as a surrogate pair
      String.raw`"\ud800 lone \udc00"`, // lone surrogates stay lone
      '"\ud83d\ude00 raw astral and \u00a0 nbsp"',
      String.raw`"\\"`, String.raw`"\\\""`, String.raw`"a\\\\"`, String.raw`["\\", "\"", "\\\\\""]`,
      '[]', '{}', '[[]]', '[{}]', '{"a":{}}', ' [ 1 , [ 2 , [ 3 ] ] , { } ] ',
      '{"b":1,"a":2,"10":3,"2":4,"-1":5,"01":6}', // integer-like keys are ordered by the engine either way
      '{"a":1,"a":2,"b":3,"a":4}', // duplicate keys: last value, first position
      '{"__proto__":{"polluted":true},"x":1}',
      '{"constructor":1,"hasOwnProperty":2,"toString":"s"}',
      '{"":"empty key","\\u0000":"nul key"}',
      '[1,"two",true,null,{"k":[false,-0.0]},[[[]]]]',
    ];
    for (const d of docs) expectSameAsJsonParse(d);
    const proto = parseJsonSync('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(Object.keys(proto)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('handles nesting deeper than a recursive parser could', () => {
    const depth = 200_000;
    const got = parseJsonSync('['.repeat(depth) + ']'.repeat(depth));
    let d = 0;
    for (let v = got; Array.isArray(v) && v.length > 0; v = v[0] as unknown) d++;
    expect(d).toBe(depth - 1);
  });

  it('refuses what JSON.parse refuses, saying where', () => {
    const cases: [string, number][] = [
      ['', 0], [' ', 1], ['{', 1], ['[', 1], ['[1,]', 3], ['{"a":1,}', 7], ['{"a" 1}', 5], ['{a:1}', 1],
      ['"abc', 4], [String.raw`"a\x"`, 3], [String.raw`"\u12G4"`, 5], ['"a\tb"', 2], ['01', 1], ['-', 1],
      ['1.', 1], ['.5', 0], ['1e', 1], ['+1', 0], ['tru', 0], ['nul', 0], ['[1 2]', 3], ['{"a":1 "b":2}', 7],
      ['1 2', 2], ['NaN', 0], ['[1]]', 3], ['"\\', 2], ['{"a":[}', 6], ['\u00a0 1', 0], ['[1,,2]', 3],
      ['{"a":1}{', 7], ["{'a':1}", 1], ['[-]', 2], ['[01]', 2], ['"a\nb"', 2],
    ];
    for (const [text, at] of cases) {
      expect(() => JSON.parse(text), text).toThrow(SyntaxError);
      let err: unknown;
      try {
        parseJsonSync(text);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(JsonSliceError);
      expect(err, text).toBeInstanceOf(SyntaxError);
      expect((err as JsonSliceError).position, text).toBe(at);
      expect((err as Error).message, text).toContain(`at position ${at}`);
    }
  });
});

describe('ownKeysSteps', () => {
  it('lists a large parsed object’s keys in Object.keys order', () => {
    const keys: string[] = [];
    for (let i = 0; i < LARGE_OBJECT_KEYS + 500; i++) {
      const r = (i * 7919) % 1009;
      // Plain names, array indices (out of order), near-indices that are names, duplicates, __proto__.
      keys.push(r % 5 === 0 ? String(r * 3) : r % 7 === 0 ? `0${r}` : r % 11 === 0 ? `${r}.0` : `k${r}`);
    }
    keys.push('4294967294', '4294967295', '-1', '__proto__', 'k1', '0');
    const text = `{${keys.map((k, i) => `${JSON.stringify(k)}:${i}`).join(',')}}`;
    const parsed = parseJsonSync(text) as object;
    expect(runToEnd(ownKeysSteps(parsed))).toEqual(Object.keys(JSON.parse(text) as object));
    expect(runToEnd(ownKeysSteps(parsed))).toEqual(Object.keys(parsed));
  });

  it('lists the fixture vocabulary in Object.keys order, and any other object by Object.keys', () => {
    const text = readFileSync(join(checkpointDir('qwen2-vl'), 'tokenizer.json'), 'utf8');
    const vocab = (parseJsonSync(text) as { model: { vocab: object } }).model.vocab;
    expect(runToEnd(ownKeysSteps(vocab))).toEqual(Object.keys(vocab));
    const plain = { b: 1, 2: 2, a: 3, 1: 4 };
    expect(runToEnd(ownKeysSteps(plain))).toEqual(['1', '2', 'b', 'a']);
  });
});

describe('decodeUtf8Steps', () => {
  it('decodes as Buffer.toString does, in 1 MiB steps, whatever falls on a step boundary', () => {
    const MiB = 1 << 20;
    // Valid multi-byte characters, a BOM, and bad sequences (lone continuation, truncated lead, overlong,
    // surrogate, out of range) placed across the first step boundary.
    const odd = [
      [0xef, 0xbb, 0xbf], [0xe4, 0xbd, 0xa0], [0xf0, 0x9f, 0x98, 0x80], [0x80], [0xe4, 0xbd], [0xc0, 0xaf],
      [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3, 0xa9], [0xff],
    ].flat();
    for (const shift of [0, 1, 2, 3, 5, 9]) {
      const bytes = Buffer.alloc(MiB + 64, 0x61);
      bytes.set([0xef, 0xbb, 0xbf], 0); // a leading BOM is kept, as toString keeps it
      bytes.set(odd, MiB - shift);
      let steps = 0;
      const g = decodeUtf8Steps(bytes);
      let r = g.next();
      for (; !r.done; r = g.next()) steps++;
      expect(steps).toBe(2);
      expect(r.value === bytes.toString('utf8'), `shift ${shift}`).toBe(true);
    }
    expect(runToEnd(decodeUtf8Steps(new Uint8Array(0)))).toBe('');
  });
});

describe('parseJsonSliced', () => {
  it('pauses every few thousand characters and gives the same value', async () => {
    const text = readFileSync(join(checkpointDir('qwen2-vl'), 'tokenizer.json'), 'utf8');
    let steps = 0;
    for (const g = parseJsonSteps(text); !g.next().done; ) steps++;
    expect(steps).toBeGreaterThan(100); // megabytes of text, paused at least every 16k characters

    let turns = 0;
    let running = true;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const got = await parseJsonSliced(text);
    running = false;
    expect(turns).toBeGreaterThan(1);
    expect(JSON.stringify(got)).toBe(JSON.stringify(JSON.parse(text)));
  });

  it('rejects with the position of a syntax error', async () => {
    await expect(parseJsonSliced('{"a": [1, 2,, 3]}')).rejects.toThrow(/at position 12/);
  });
});
