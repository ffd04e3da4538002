// The JSON reader grounding uses on free text: fences, prose, trailing commas, truncation,
// broken middles, hostile nesting.
import { describe, expect, it } from 'vitest';
import { findJsonValues as scan } from '../../lib/grounding/json-recovery.js';

const findJsonValues = (t: string) => scan(t).found;

describe('findJsonValues', () => {
  it('finds the values in prose and fences, each once, in order', () => {
    const text = 'Sure:\n```json\n[{"a": 1}, {"b": [2, 3]}]\n```\nand also {"c": "}]"} done.';
    const s = scan(text);
    const found = s.found;
    expect(found.map((f) => f.value)).toEqual([[{ a: 1 }, { b: [2, 3] }], { c: '}]' }]);
    expect(found.every((f) => f.complete)).toBe(true);
    expect(found[1].start).toBe(text.indexOf('{"c"'));
    expect(s.offsetOf((found[0].value as object[])[1])).toBe(text.indexOf('{"b"'));
  });

  it('matches JSON.parse on valid JSON, and tolerates trailing commas', () => {
    const valid = ['[]', '{}', '[1, -2.5e3, true, false, null, "x\\n\\u00e9\\"", {"k": [[]]}]', '{"__proto__": {"polluted": 1}, "a": {"b": {}}}'];
    for (const t of valid) {
      const [f] = findJsonValues(t);
      expect(f.value).toEqual(JSON.parse(t));
      expect(f.complete).toBe(true);
    }
    const proto = findJsonValues('{"__proto__": {"polluted": 1}}')[0].value as Record<string, unknown>;
    expect(Object.hasOwn(proto, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(findJsonValues('[1, 2, ]')[0].value).toEqual([1, 2]);
    expect(findJsonValues('{"a": 1,}')[0].value).toEqual({ a: 1 });
  });

  it('a truncated value keeps what completed; the open containers are marked incomplete', () => {
    const s = scan('[{"a": 1}, {"b": [1, 2], "c": "unfinish');
    const [f] = s.found;
    const isIncomplete = (o: object) => s.isIncomplete(o);
    expect(f.complete).toBe(false);
    const list = f.value as Record<string, unknown>[];
    expect(list).toHaveLength(2);
    expect(isIncomplete(list[0])).toBe(false);
    expect(isIncomplete(list[1])).toBe(true);
    expect(list[1]).toEqual({ b: [1, 2] });
  });

  it('a broken middle: the reading resumes after the break', () => {
    const found = findJsonValues('[{"a": 1}, oops {"b": 2}] [1, 2}');
    expect(found.map((f) => [f.value, f.complete])).toEqual([
      [[{ a: 1 }], false],
      [{ b: 2 }, true],
      [[1, 2], false],
    ]);
  });

  it('never throws, and stays linear and bounded on hostile text', () => {
    for (const t of ['', '[', '{', '"', '{"a"', '{"a":', '[-', '["\\', '["\\u12"]', '[tru]', '{1: 2}', '\u0000[\u0000]']) {
      expect(() => findJsonValues(t)).not.toThrow();
    }
    // 400k characters of each: a quadratic scan would take minutes and run past this test's timeout
    // (no wall-clock assertion: the timeout only catches a scan that does not stay linear).
    for (const t of ['['.repeat(200_000) + ']'.repeat(200_000), '{'.repeat(400_000), '[{"a": ['.repeat(50_000), '[1,'.repeat(130_000)]) {
      const found = findJsonValues(t);
      expect(found.length).toBeGreaterThan(0);
    }
  }, 60_000);
});
