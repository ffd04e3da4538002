// Thinking blocks: splitReasoning on finished replies, ReasoningStream on the same replies in every
// chunk split, and ReplyParser (reasoning, then tool calls in the answer only).
import { describe, expect, it } from 'vitest';
import { promptOpensThinking, ReasoningStream, splitReasoning, type ReasoningPiece } from '../../lib/generate/reasoning.js';
import { ReplyParser, type ChatStreamEvent } from '../../lib/generate/reply.js';
import { QwenVLError } from '../../lib/index.js';

function* splits(s: string): Generator<string[]> {
  yield [s];
  for (let i = 1; i < s.length; i++) {
    yield [s.slice(0, i), s.slice(i)];
    for (let j = i + 1; j < s.length; j += 5) yield [s.slice(0, i), s.slice(i, j), s.slice(j)];
  }
}

function streamed(chunks: string[], open = false) {
  const s = new ReasoningStream({ open });
  const pieces: ReasoningPiece[] = [];
  for (const c of chunks) pieces.push(...s.push(c));
  pieces.push(...s.end());
  const join = (t: string) => pieces.filter((p) => p.type === t).map((p) => p.text).join('');
  expect(pieces.every((p) => p.text.length > 0)).toBe(true);
  return { ...(s.found ? { reasoning: join('reasoning') } : {}), text: join('text'), closed: s.closed };
}

describe('splitReasoning', () => {
  it('a generated block: reasoning and answer, newlines around them dropped', () => {
    expect(splitReasoning('<think>\nThe sky scatters blue light.\n</think>\n\nIt is blue.')).toEqual({
      reasoning: 'The sky scatters blue light.', text: 'It is blue.', closed: true,
    });
  });

  it('a block the prompt opened: the reply holds only </think>', () => {
    expect(splitReasoning('Hmm, a cat.\n\nYes.\n</think>\n\nA cat.', { open: true })).toEqual({ reasoning: 'Hmm, a cat.\n\nYes.', text: 'A cat.', closed: true });
    // A model that writes the opening tag again: it is not reasoning text.
    expect(splitReasoning('\n<think>\nHmm.</think>A cat.', { open: true })).toEqual({ reasoning: 'Hmm.', text: 'A cat.', closed: true });
    // Without `open`, the same reply has no block: everything is text.
    expect(splitReasoning('Hmm.\n</think>\n\nA cat.')).toEqual({ text: 'Hmm.\n</think>\n\nA cat.', closed: false });
  });

  it('a reply cut inside the block keeps its reasoning and has no text', () => {
    expect(splitReasoning('<think>\nFirst, the', {})).toEqual({ reasoning: 'First, the', text: '', closed: false });
    expect(splitReasoning('First, the </thi', { open: true })).toEqual({ reasoning: 'First, the </thi', text: '', closed: false });
    expect(splitReasoning('', { open: true })).toEqual({ reasoning: '', text: '', closed: false });
  });

  it('an empty block (thinking switched off) gives empty reasoning', () => {
    expect(splitReasoning('<think>\n\n</think>\n\nHi.')).toEqual({ reasoning: '', text: 'Hi.', closed: true });
  });

  it('a reply without a block at its start is unchanged', () => {
    for (const t of ['Hello <think>not this</think>', '  spaced  ', '', '<thin', '<b>bold</b>', '\n\n']) {
      expect(splitReasoning(t)).toEqual({ text: t, closed: false });
    }
  });

  it('only the first </think> closes the block; whitespace inside the reasoning is kept', () => {
    expect(splitReasoning('<think>a\n\n  b</think>x</think>y')).toEqual({ reasoning: 'a\n\n  b', text: 'x</think>y', closed: true });
  });

  it('bad arguments: E_INPUT', () => {
    expect(() => splitReasoning(1 as unknown as string)).toThrow(QwenVLError);
    expect(() => splitReasoning('x', { open: 'yes' as unknown as boolean })).toThrow(/open/);
  });

  it('promptOpensThinking: the prompt ends with <think> and whitespace', () => {
    expect(promptOpensThinking('<|im_start|>assistant\n<think>\n')).toBe(true);
    expect(promptOpensThinking('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(false);
    expect(promptOpensThinking('<|im_start|>assistant\n')).toBe(false);
  });
});

describe('ReasoningStream', () => {
  const replies: [string, boolean][] = [
    ['<think>\nLet me see: </thinking> is not it.\n\n</think>\n\nThe answer is 4.\n', false],
    ['  \n<think>short</think>answer', false],
    ['Considering 🌍 and more.\n</think>\n\nDone', true],
    ['cut off in the mid', true],
    ['<think>cut off </th', false],
    ['<thought>not a block</thought>', false],
    ['<think>\nagain</think>\nok', true],
    ['<thi', true],
    ['  ', true],
  ];
  it('gives what splitReasoning gives, in every split of the chunks', () => {
    for (const [reply, open] of replies) {
      const whole = splitReasoning(reply, { open });
      for (const chunks of splits(reply)) expect(streamed(chunks, open)).toEqual(whole);
    }
  });

  it('streams reasoning before the block closes, holding only what may be a tag or trailing whitespace', () => {
    const s = new ReasoningStream();
    expect(s.push('<thi')).toEqual([]);
    expect(s.push('nk>\nStep one')).toEqual([{ type: 'reasoning', text: 'Step one' }]);
    expect(s.push('.\n</')).toEqual([{ type: 'reasoning', text: '.' }]);
    expect(s.push('think>\n\nFour')).toEqual([{ type: 'text', text: 'Four' }]);
    expect(s.end()).toEqual([]);
  });
});

describe('ReplyParser', () => {
  const events = (chunks: string[], o: { thinking: boolean; tools: boolean }) => {
    const r = new ReplyParser({ ...o, makeId: (i) => `call_${i}` });
    const ev: ChatStreamEvent[] = [];
    for (const c of chunks) ev.push(...r.push(c));
    ev.push(...r.end());
    return { ev, fields: r.fields(), ends: r.endsWithToolCall };
  };

  it('reasoning, then tool calls parsed out of the answer only', () => {
    const reply = 'I should call <tool_call>{"name": "draft"}</tool_call> maybe.\n</think>\n\nChecking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>';
    for (const chunks of splits(reply)) {
      const { ev, fields, ends } = events(chunks, { thinking: true, tools: true });
      expect(fields).toEqual({
        text: 'Checking.',
        reasoning: 'I should call <tool_call>{"name": "draft"}</tool_call> maybe.',
        toolCalls: [{ id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
      });
      expect(ends).toBe(true);
      // The events carry the same, in reply order.
      expect(ev.filter((e) => e.type === 'tool_call')).toEqual([{ type: 'tool_call', index: 0, toolCall: fields.toolCalls![0] }]);
      expect(ev.findIndex((e) => e.type === 'reasoning')).toBe(0);
    }
  });

  it('without tools, <tool_call> text stays text; malformed calls land in toolCallErrors', () => {
    const reply = 'A <tool_call>{"name": "f"}</tool_call><tool_call>{x</tool_call>';
    expect(events([reply], { thinking: false, tools: false }).fields).toEqual({ text: reply });
    const { fields, ends } = events([reply], { thinking: false, tools: true });
    expect(fields.text).toBe('A');
    expect(fields.toolCalls).toHaveLength(1);
    expect(fields.toolCallErrors).toEqual([{ index: 1, raw: '{x', message: expect.stringMatching(/not valid JSON/) }]);
    expect(ends).toBe(false);
  });
});
