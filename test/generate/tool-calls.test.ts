// The Hermes tool-call parser on finished replies and on the same replies streamed in every split.
import { describe, expect, it } from 'vitest';
import { parseToolCalls, ToolCallStream, type ToolCallPiece } from '../../lib/generate/tool-calls.js';
import { QwenVLError } from '../../lib/index.js';

const ids = { makeId: (i: number) => `call_${i}` };
const call = (name: string, args: unknown) => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;

/** The reply fed in the given chunks, pieces merged back into one result. */
function streamed(chunks: string[]) {
  const s = new ToolCallStream(ids);
  const pieces: ToolCallPiece[] = [];
  for (const c of chunks) pieces.push(...s.push(c));
  pieces.push(...s.end());
  const text = pieces.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text).join('');
  return { pieces, text, ends: s.endsWithToolCall };
}

/** Every way of cutting `s` in two and in three (at character boundaries). */
function* splits(s: string): Generator<string[]> {
  yield [s];
  for (let i = 1; i < s.length; i++) {
    yield [s.slice(0, i), s.slice(i)];
    for (let j = i + 1; j < s.length; j += 7) yield [s.slice(0, i), s.slice(i, j), s.slice(j)];
  }
}

describe('parseToolCalls on a finished reply', () => {
  it('one call: OpenAI shape, arguments as a JSON string, ends in a tool call', () => {
    const r = parseToolCalls(call('get_weather', { city: 'Paris', days: 3 }), ids);
    expect(r.text).toBe('');
    expect(r.errors).toEqual([]);
    expect(r.toolCalls).toEqual([{ id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":3}' } }]);
    expect(r.endsWithToolCall).toBe(true);
  });

  it('several calls, text before and between kept, whitespace next to the blocks at the ends dropped', () => {
    const reply = `Let me check both.\n${call('a', { x: 1 })}\nand then\n${call('b', {})}\n`;
    const r = parseToolCalls(reply, ids);
    expect(r.toolCalls.map((c) => [c.id, c.function.name, c.function.arguments])).toEqual([['call_0', 'a', '{"x":1}'], ['call_1', 'b', '{}']]);
    expect(r.text).toBe('Let me check both.\n\nand then');
    expect(r.endsWithToolCall).toBe(true);
  });

  it('text after the last call: not a tool-calls ending', () => {
    const r = parseToolCalls(`${call('a', {})}\nDone.`, ids);
    expect(r.text).toBe('Done.');
    expect(r.endsWithToolCall).toBe(false);
  });

  it('a reply without calls is returned unchanged, whitespace included', () => {
    for (const t of ['', '  hello  ', '\n\nA < B and tool_call>\n', 'almost <tool_cal']) {
      const r = parseToolCalls(t, ids);
      expect(r).toEqual({ text: t, toolCalls: [], errors: [], endsWithToolCall: false });
    }
  });

  it('braces, quotes and tags inside JSON strings', () => {
    const args = { code: 'function f() { return "}{"; }', note: 'a </tool_ca ll> {"name": "x"}', nested: { a: [{ b: '{' }] } };
    const r = parseToolCalls(`${call('run', args)}`, ids);
    expect(r.errors).toEqual([]);
    expect(JSON.parse(r.toolCalls[0].function.arguments)).toEqual(args);
  });

  it('arguments given as a JSON string, or missing, are accepted', () => {
    const r = parseToolCalls('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call><tool_call>{"name": "g"}</tool_call>', ids);
    expect(r.toolCalls.map((c) => c.function.arguments)).toEqual(['{"a":1}', '{}']);
  });

  it('malformed calls are reported with their raw body and place, and the well-formed ones kept', () => {
    const bad = [
      ['not json', /not valid JSON/],
      ['', /empty/],
      ['[1, 2]', /JSON object.*an array/],
      ['{"arguments": {}}', /no "name"/],
      ['{"name": "", "arguments": {}}', /no "name"/],
      ['{"name": "f", "arguments": [1]}', /"arguments" of f must be a JSON object, got an array/],
      ['{"name": "f", "arguments": "nope"}', /string that is not JSON/],
      ['{"name": "f", "arguments": {"a": 1}', /not valid JSON/],
    ] as const;
    for (const [body, why] of bad) {
      const reply = `x ${call('ok', { n: 1 })} <tool_call>${body}</tool_call> y`;
      const r = parseToolCalls(reply, ids);
      expect(r.toolCalls).toHaveLength(1);
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]).toMatchObject({ index: 1, raw: body });
      expect(r.errors[0].message).toMatch(why);
      expect(r.text).toBe('x   y');
    }
  });

  it('a malformed last block does not make a tool-calls ending', () => {
    expect(parseToolCalls(`${call('a', {})}<tool_call>{oops}</tool_call>`, ids).endsWithToolCall).toBe(false);
  });

  it('a reply cut inside a call: truncated JSON is an error naming the missing close tag', () => {
    const r = parseToolCalls('Sure.\n<tool_call>\n{"name": "f", "arguments": {"q": "abc', ids);
    expect(r.text).toBe('Sure.');
    expect(r.toolCalls).toEqual([]);
    expect(r.errors).toEqual([{ index: 0, raw: '\n{"name": "f", "arguments": {"q": "abc', message: expect.stringMatching(/ended inside a tool call \(no <\/tool_call>\).*not valid JSON/) }]);
  });

  it('a complete call whose close tag never came is still a call', () => {
    const r = parseToolCalls('<tool_call>\n{"name": "f", "arguments": {}}\n', ids);
    expect(r.toolCalls).toHaveLength(1);
    expect(r.endsWithToolCall).toBe(true);
  });

  it('default ids are unique call_ ids', () => {
    const r = parseToolCalls(`${call('a', {})}${call('a', {})}`);
    expect(r.toolCalls[0].id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(r.toolCalls[0].id).not.toBe(r.toolCalls[1].id);
  });

  it('bad arguments: E_INPUT', () => {
    expect(() => parseToolCalls(5 as unknown as string)).toThrow(QwenVLError);
    expect(() => parseToolCalls('x', { makeId: 3 as unknown as () => string })).toThrow(/makeId/);
  });
});

describe('ToolCallStream', () => {
  const replies = [
    `Let me check.\n${call('get_weather', { city: 'Zürich 🌧', q: '}{' })}\n${call('b', { n: [1, 2] })}\n`,
    `  lead ${call('a', {})} mid <tool_call>{bad}</tool_call> tail <tool_ca`,
    `no calls at all < tool_call > <tool_call`,
    `<tool_call>{"name": "f", "arguments": {"q": "cut`,
  ];
  it('gives the same pieces in every split of the chunks as in one piece', () => {
    for (const reply of replies) {
      const whole = parseToolCalls(reply, ids);
      for (const chunks of splits(reply)) {
        const s = streamed(chunks);
        expect(s.text).toBe(whole.text);
        expect(s.pieces.filter((p) => p.type === 'tool_call').map((p) => (p as { toolCall: unknown }).toolCall)).toEqual(whole.toolCalls);
        expect(s.pieces.filter((p) => p.type === 'tool_call_error').map((p) => (p as { error: unknown }).error)).toEqual(whole.errors);
        expect(s.ends).toBe(whole.endsWithToolCall);
      }
    }
  });

  it('streams text before a call is complete, and each call once its close tag arrives', () => {
    const s = new ToolCallStream(ids);
    expect(s.push('Checking the weather')).toEqual([{ type: 'text', text: 'Checking the weather' }]);
    expect(s.push('.\n<tool')).toEqual([{ type: 'text', text: '.' }]);
    expect(s.push('_call>\n{"name": "w", "argu')).toEqual([]);
    expect(s.push('ments": {}}\n</tool_call')).toEqual([]);
    expect(s.push('>')).toEqual([{ type: 'tool_call', index: 0, toolCall: { id: 'call_0', type: 'function', function: { name: 'w', arguments: '{}' } } }]);
    expect(s.end()).toEqual([]);
    expect(s.endsWithToolCall).toBe(true);
    expect(() => s.push('more')).toThrow(QwenVLError);
  });
});
