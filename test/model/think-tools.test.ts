// Thinking and tool calls end to end on the fixture checkpoints: chat(), stream() and
// streamEvents() with the real template, tokenizer, prefill and decode loop. The random-weight
// checkpoints never write a thinking block or a tool call, so the decode is scripted: the token
// loop runs as usual and each step's token is replaced, at the one call chat() makes (runOnEngine), by
// the next token of the reply under test (then end-of-sequence). Everything after it (detokenizing,
// stop strings, the reply parser, finish reasons) is what a real reply goes through.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as gen from '../../lib/model/generate.js';
import { loadModel, QwenVLError, type ChatMessage, type ChatStreamEvent, type Model, type ToolDefinition } from '../../lib/index.js';
import { runCliCaptured } from '../helpers/cli-in-process.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { IM_END, scriptedRun, WEATHER } from '../helpers/scripted-decode.js';

vi.mock('../../lib/model/generate.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../lib/model/generate.js')>();
  return { ...real, runOnEngine: vi.fn(real.runOnEngine) };
});
const realRun = (await vi.importActual<typeof import('../../lib/model/generate.js')>('../../lib/model/generate.js')).runOnEngine;
const runOnEngine = vi.mocked(gen.runOnEngine);

/** The next generations emit `rows[b]` for batch row b in place of the model's tokens. */
function script(rows: number[][]): void {
  runOnEngine.mockImplementation(scriptedRun(realRun, rows));
}

const user = (text: string): ChatMessage[] => [{ role: 'user', content: [{ type: 'text', text }] }];

async function collect(it: AsyncGenerator<ChatStreamEvent, unknown>): Promise<ChatStreamEvent[]> {
  const out: ChatStreamEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}
const joined = (events: ChatStreamEvent[], type: 'text' | 'reasoning') =>
  events.filter((e) => e.type === type).map((e) => (e as { text: string }).text).join('');

async function expectInput(p: Promise<unknown>, match: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(QwenVLError);
  expect((e as QwenVLError).code).toBe('E_INPUT');
  expect((e as QwenVLError).message).toMatch(match);
}

/**
 * A copy of the Qwen3-VL fixture checkpoint whose template opens the thinking block in the generation
 * prompt, as the Qwen3-VL Thinking checkpoints' templates do; it honours enable_thinking: false by
 * closing the block empty, as the Qwen3 text templates do.
 */
function thinkingCheckpoint(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qwenvl-think-'));
  cpSync(checkpointDir('qwen3-vl'), dir, { recursive: true });
  const tpl = JSON.parse(readFileSync(join(dir, 'chat_template.json'), 'utf8')) as { chat_template: string };
  const gp = "{{- '<|im_start|>assistant\\n' }}";
  expect(tpl.chat_template).toContain(gp);
  tpl.chat_template = tpl.chat_template.replace(gp, "{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- else %}{{- '<think>\\n' }}{%- endif %}");
  writeFileSync(join(dir, 'chat_template.json'), JSON.stringify(tpl));
  return dir;
}

describe('Qwen3-VL: thinking', () => {
  let model: Model;
  let thinking: Model; // the same checkpoint under a Thinking variant's generation prompt
  let dir: string;
  beforeAll(async () => {
    model = await loadModel(checkpointDir('qwen3-vl'));
    dir = thinkingCheckpoint();
    thinking = await loadModel(dir);
  });
  afterAll(() => {
    model?.dispose();
    thinking?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a generated <think> block comes back as reasoning; text, stream and streamEvents agree', async () => {
    const reply = '<think>\nThe image is a gradient, so blue.\n</think>\n\nIt is blue.';
    const ids = [...model.tokenizer.encode(reply), IM_END];
    expect(ids).toContain(model.tokenizer.specialIds.thinkEnd); // the tags are single tokens here
    script([ids]);
    const r = await model.chat(user('Colour?'), { doSample: false, maxTokens: 64 });
    expect(r).toMatchObject({ reasoning: 'The image is a gradient, so blue.', text: 'It is blue.', finishReason: 'stop' });
    expect(r.tokens).toEqual(ids);
    expect(r).not.toHaveProperty('toolCalls');

    script([ids]);
    const events = await collect(model.streamEvents(user('Colour?'), { doSample: false, maxTokens: 64 }));
    expect(joined(events, 'reasoning')).toBe(r.reasoning);
    expect(joined(events, 'text')).toBe(r.text);
    expect(events.findIndex((e) => e.type === 'text')).toBeGreaterThan(events.findLastIndex((e) => e.type === 'reasoning'));

    script([ids]);
    const chunks: string[] = [];
    const s = model.stream(user('Colour?'), { doSample: false, maxTokens: 64 });
    let step = await s.next();
    for (; !step.done; step = await s.next()) chunks.push(step.value);
    expect(chunks.join('')).toBe('It is blue.');
    expect(step.value).toMatchObject({ reasoning: r.reasoning, text: r.text });
  });

  it('a block the template opened: the reply holds only </think>', async () => {
    const p = await thinking.prepare(user('Colour?'));
    expect(p.promptTexts[0].endsWith('<|im_start|>assistant\n<think>\n')).toBe(true);
    const ids = [...thinking.tokenizer.encode('Blue, I think.\n</think>\n\nBlue.'), IM_END];
    script([ids]);
    const r = await thinking.chat(user('Colour?'), { doSample: false, maxTokens: 64 });
    expect(r).toMatchObject({ reasoning: 'Blue, I think.', text: 'Blue.', finishReason: 'stop' });
  });

  it('a reply cut off inside the block keeps its reasoning, with finishReason "length"', async () => {
    const ids = thinking.tokenizer.encode('First, look at the corners; then the centre, which');
    const n = 6;
    script([ids]);
    const r = await thinking.chat(user('Colour?'), { doSample: false, maxTokens: n });
    expect(r.finishReason).toBe('length');
    expect(r.text).toBe('');
    expect(r.reasoning).toBe(thinking.tokenizer.decode(ids.slice(0, n)).trim());
    script([ids]);
    const events = await collect(thinking.streamEvents(user('Colour?'), { doSample: false, maxTokens: n }));
    expect(events.every((e) => e.type === 'reasoning')).toBe(true);
    expect(joined(events, 'reasoning')).toBe(r.reasoning);
  });

  it('templateVariables reach the template: enable_thinking false closes the block in the prompt', async () => {
    const p = await thinking.prepare(user('Colour?'), { templateVariables: { enable_thinking: false } });
    expect(p.promptTexts[0].endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
    const e = await thinking.estimateTokens(user('Colour?'), { templateVariables: { enable_thinking: false } });
    expect(e.textTokens).toBe(p.seqLength);
    script([[...thinking.tokenizer.encode('Blue.'), IM_END]]);
    const r = await thinking.chat(user('Colour?'), { doSample: false, maxTokens: 16, templateVariables: { enable_thinking: false } });
    expect(r.text).toBe('Blue.');
    expect(r).not.toHaveProperty('reasoning');
    await expectInput(thinking.chat(user('x'), { templateVariables: [1] as unknown as Record<string, unknown> }), /templateVariables: expected an object/);
    await expectInput(thinking.chat(user('x'), { templateVariables: { messages: [] } }), /variable "messages" is set by the renderer/);
  });
});

describe('Qwen3-VL: tools', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(checkpointDir('qwen3-vl'));
  });
  afterAll(() => model?.dispose());
  const callText = (city: string) => `<tool_call>\n{"name": "get_weather", "arguments": {"city": "${city}"}}\n</tool_call>`;

  it('tools reach the template; the reply\'s calls come back in OpenAI\'s shape with finishReason "tool_calls"', async () => {
    const p = await model.prepare(user('Weather?'), { tools: [WEATHER] });
    expect(p.promptTexts[0]).toContain(`<tools>\n${JSON.stringify(WEATHER).replace(/":/g, '": ').replace(/,"/g, ', "')}\n</tools>`);
    const reply = `Checking both.\n${callText('Paris')}\n${callText('Oslo')}`;
    const ids = [...model.tokenizer.encode(reply), IM_END];
    script([ids]);
    const r = await model.chat(user('Weather?'), { doSample: false, maxTokens: 200, tools: [WEATHER], seed: 5 });
    expect(r.finishReason).toBe('tool_calls');
    expect(r.text).toBe('Checking both.');
    expect(r.toolCalls!.map((c) => [c.type, c.function.name, c.function.arguments])).toEqual([
      ['function', 'get_weather', '{"city":"Paris"}'],
      ['function', 'get_weather', '{"city":"Oslo"}'],
    ]);
    for (const c of r.toolCalls!) expect(c.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(r.toolCalls![0].id).not.toBe(r.toolCalls![1].id);
    expect(r).not.toHaveProperty('toolCallErrors');

    // The same seeded request reproduces its ids; streamEvents gives the calls as they complete.
    script([ids]);
    const events = await collect(model.streamEvents(user('Weather?'), { doSample: false, maxTokens: 200, tools: [WEATHER], seed: 5 }));
    expect(events.filter((e) => e.type === 'tool_call')).toEqual(r.toolCalls!.map((toolCall, index) => ({ type: 'tool_call', index, toolCall })));
    expect(joined(events, 'text')).toBe(r.text);
    // Without tools, the same reply is plain text.
    script([ids]);
    const plain = await model.chat(user('Weather?'), { doSample: false, maxTokens: 200 });
    expect(plain.text).toBe(reply);
    expect(plain.finishReason).toBe('stop');
  });

  it('malformed calls are reported, the others kept; a batch parses each row', async () => {
    const bad = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa\n</tool_call>';
    script([
      [...model.tokenizer.encode(`${bad}\n${callText('Rome')}`), IM_END],
      [...model.tokenizer.encode('No tools needed.'), IM_END],
    ]);
    const [a, b] = await model.chat([user('Weather?'), user('Hi')], { doSample: false, maxTokens: 100, tools: [WEATHER] });
    expect(a.toolCalls!.map((c) => c.function.arguments)).toEqual(['{"city":"Rome"}']);
    expect(a.toolCallErrors).toEqual([{ index: 0, raw: '\n{"name": "get_weather", "arguments": {"city": "Pa\n', message: expect.stringMatching(/not valid JSON/) }]);
    expect(a.finishReason).toBe('tool_calls');
    expect(b).toMatchObject({ text: 'No tools needed.', finishReason: 'stop' });
    expect(b).not.toHaveProperty('toolCalls');
  });

  it('the tool turn round-trips: the calling turn renders as the model wrote it, the result as a tool_response', async () => {
    const reply = callText('Paris');
    script([[...model.tokenizer.encode(reply), IM_END]]);
    const r = await model.chat(user('Weather in Paris?'), { doSample: false, maxTokens: 100, tools: [WEATHER] });
    const call = r.toolCalls![0];
    const turn: ChatMessage[] = [
      ...user('Weather in Paris?'),
      { role: 'assistant', content: r.text || null, tool_calls: r.toolCalls },
      { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' },
    ];
    const p = await model.prepare(turn, { tools: [WEATHER] });
    // The real Qwen3-VL template, as transformers renders it with the arguments as a dict (this string
    // and the Qwen2.5-VL one below were checked against Python Jinja2 3.1.6 set up as transformers sets
    // it up: sandboxed, trim_blocks, lstrip_blocks, tojson = json.dumps(ensure_ascii=False)).
    const tools = '{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}';
    expect(p.promptTexts[0]).toBe(
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
      'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' + tools + '\n</tools>\n\n' +
      'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
      '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
      '<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
      `<|im_start|>assistant\n${reply}<|im_end|>\n` +
      '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n' +
      '<|im_start|>assistant\n',
    );
    // Arguments given as an object render the same; the next turn runs.
    const asObject = [turn[0], { ...turn[1], tool_calls: [{ ...call, function: { name: 'get_weather', arguments: { city: 'Paris' } } }] }, turn[2]];
    expect((await model.prepare(asObject, { tools: [WEATHER] })).promptTexts).toEqual(p.promptTexts);
    script([[...model.tokenizer.encode('It is 21 degrees.'), IM_END]]);
    expect((await model.chat(turn, { doSample: false, maxTokens: 50, tools: [WEATHER] })).text).toBe('It is 21 degrees.');
  });

  it('bad tools and tool messages: E_INPUT naming the path', async () => {
    const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } };
    const convo = (c: unknown, tool: Record<string, unknown> = { role: 'tool', tool_call_id: 'call_1', content: 'ok' }) =>
      [...user('x'), { role: 'assistant', content: null, tool_calls: [c] }, tool] as ChatMessage[];
    await expectInput(model.chat(convo({ ...call, function: { arguments: '{}' } })), /messages\[1\]\.tool_calls\[0\]\.function\.name: expected a non-empty string/);
    await expectInput(model.chat(convo({ ...call, function: { name: 'f', arguments: '{oops' } })), /messages\[1\]\.tool_calls\[0\]\.function\.arguments: .*not JSON/);
    await expectInput(model.chat(convo({ ...call, function: { name: 'f', arguments: '[1]' } })), /messages\[1\]\.tool_calls\[0\]\.function\.arguments: expected a JSON object/);
    await expectInput(model.chat(convo({ ...call, type: 'code' })), /messages\[1\]\.tool_calls\[0\]\.type/);
    await expectInput(model.chat(convo(call, { role: 'tool', content: null })), /messages\[2\]\.content: expected the tool result/);
    await expectInput(model.chat(convo(call, { role: 'tool', content: 'ok', tool_call_id: 7 })), /messages\[2\]\.tool_call_id/);
    await expectInput(model.chat([{ role: 'user', content: 'x', tool_calls: [call] }]), /messages\[0\]\.tool_calls: only assistant messages/);
    await expectInput(model.chat(user('x'), { tools: [{ type: 'function', function: { name: '' } }] as unknown as ToolDefinition[] }), /tools\[0\]\.function\.name/);
    await expectInput(model.chat(user('x'), { tools: [{ type: 'retrieval' }] as unknown as ToolDefinition[] }), /tools\[0\]\.type/);
    await expectInput(model.prepare(user('x'), { tools: {} as unknown as ToolDefinition[] }), /prepare: options\.tools: expected an array/);
    await expectInput(model.prepare(user('x'), { tools: [{ type: 'function', function: { name: 'f', parameters: 3 } }] as unknown as ToolDefinition[] }), /tools\[0\]\.function\.parameters/);
    // A well-formed round trip with null content passes.
    expect((await model.prepare(convo(call))).promptTexts[0]).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>');
  });
});

describe('Qwen2.5-VL: a template without tool support', () => {
  it('renders the tool turn as transformers does: tools left out, the calling turn empty, the result under role "tool"', async () => {
    const model = await loadModel(checkpointDir('qwen2.5-vl'));
    try {
      const turn: ChatMessage[] = [
        ...user('Weather in Paris?'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
      ];
      const p = await model.prepare(turn, { tools: [WEATHER] });
      expect(p.promptTexts[0]).toBe(
        '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
        '<|im_start|>assistant\n<|im_end|>\n<|im_start|>tool\n{"temp": 21}<|im_end|>\n<|im_start|>assistant\n',
      );
    } finally {
      model.dispose();
    }
  });
});

describe('Qwen2-VL: tags split across tokens', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(checkpointDir('qwen2-vl'));
  });
  afterAll(() => model?.dispose());

  it('a tool call whose tags are several BPE tokens streams and parses as one', async () => {
    // Qwen2-VL's vocabulary has no <tool_call> token: the tag is spelled out over several tokens.
    expect(model.tokenizer.encode('<tool_call>').length).toBeGreaterThan(1);
    const reply = 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich", "note": "a } in a string"}}\n</tool_call>';
    const ids = [...model.tokenizer.encode(reply), IM_END];
    script([ids]);
    const events = await collect(model.streamEvents(user('Weather?'), { doSample: false, maxTokens: 100, tools: [WEATHER] }));
    expect(events.filter((e) => e.type !== 'text')).toEqual([
      { type: 'tool_call', index: 0, toolCall: { id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '{"city":"Zürich","note":"a } in a string"}' } } },
    ]);
    expect(events.at(-1)!.type).toBe('tool_call');
    expect(joined(events, 'text')).toBe('Sure.');
  });
});

describe('qwenvl chat: reasoning and --tools', () => {
  let dir: string;
  let tok: Model['tokenizer'];
  beforeAll(async () => {
    dir = thinkingCheckpoint();
    writeFileSync(join(dir, 'tools.json'), JSON.stringify([WEATHER]));
    writeFileSync(join(dir, 'bad-tools.json'), '{"tools": 3}');
    const m = await loadModel(dir);
    tok = m.tokenizer;
    m.dispose();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = runCliCaptured;

  const reply = 'The user wants weather.\n</think>\n\nChecking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": oops}\n</tool_call>';

  it('reasoning on stderr, the answer and each tool call (one JSON line) on stdout', async () => {
    script([[...tok.encode(reply), IM_END]]);
    const r = await run(['chat', '--model', dir, '--tools', join(dir, 'tools.json'), '--temperature', '0', 'Weather in Paris?']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('Checking.');
    expect(JSON.parse(lines[1])).toEqual({ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect(lines.slice(2)).toEqual(['']);
    expect(r.stderr).toMatch(/^The user wants weather\.\nqwenvl chat: malformed tool call 1: the tool call is not valid JSON .*\n  raw: "\\n\{\\"name\\": oops\}\\n"\n$/);
    // The tools reached the template.
    expect(runOnEngine.mock.lastCall![2].promptTexts[0]).toContain('"name": "get_weather"');
  });

  it('--hide-reasoning drops the reasoning; --no-thinking sets enable_thinking: false', async () => {
    script([[...tok.encode(reply), IM_END]]);
    const r = await run(['chat', '--model', dir, '--hide-reasoning', '--temperature', '0', 'Hi']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    // Without --tools the calls are plain answer text.
    expect(r.stdout).toBe(`${reply.slice(reply.indexOf('Checking.'))}\n`);
    script([[...tok.encode('Hello.'), IM_END]]);
    const n = await run(['chat', '--model', dir, '--no-thinking', '--temperature', '0', 'Hi']);
    expect(n.stdout).toBe('Hello.\n');
    expect(runOnEngine.mock.lastCall![2].promptTexts[0].endsWith('<think>\n\n</think>\n\n')).toBe(true);
  });

  it('a --tools file that cannot be used is a usage error', async () => {
    for (const [file, why] of [['nope.json', /--tools: cannot read .*nope\.json \(ENOENT\)/], ['bad-tools.json', /must hold a JSON array of tools/], ['config.json', /must hold a JSON array/]] as const) {
      const r = await run(['chat', '--model', dir, '--tools', join(dir, file), 'Hi']);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(why);
    }
    writeFileSync(join(dir, 'bad-shape.json'), JSON.stringify([{ type: 'function', function: {} }]));
    const r = await run(['chat', '--model', dir, '--tools', join(dir, 'bad-shape.json'), 'Hi']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/E_INPUT: .*tools\[0\]\.function\.name/);
  });
});
