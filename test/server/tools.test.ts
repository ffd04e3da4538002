// Tool calls through `qwenvl serve` with the official openai client: the request's tools reach the
// chat template, the reply's Hermes <tool_call> blocks come back as tool_calls (plain and streamed),
// and the tool round trip (assistant tool_calls, then a tool message) renders. The random-weight
// fixture never writes a tool call, so the decode is scripted (test/helpers/scripted-decode.ts):
// the real token loop runs and each step's token is replaced by the next token of the reply under
// test; detokenizing, the reply parser, the server and the client are what a real reply goes through.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as gen from '../../lib/model/generate.js';
import { loadModel, type ChatMessage, type Model, type ToolDefinition } from '../../lib/index.js';
import { createMediaResolver } from '../../lib/openai/media.js';
import { createServer, type QwenVLServer } from '../../lib/server/server.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { IM_END, scriptedRun, WEATHER } from '../helpers/scripted-decode.js';

vi.mock('../../lib/model/generate.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../lib/model/generate.js')>();
  return { ...real, runOnEngine: vi.fn(real.runOnEngine) };
});
const realRun = (await vi.importActual<typeof import('../../lib/model/generate.js')>('../../lib/model/generate.js')).runOnEngine;
const runOnEngine = vi.mocked(gen.runOnEngine);

/** The next generation emits `ids` in place of the model's tokens. */
function script(ids: number[]): void {
  runOnEngine.mockImplementationOnce(scriptedRun(realRun, [ids]));
}

const MODEL_ID = 'fixture';
const CALL = 'Let me look.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>';

let model: Model;
let server: QwenVLServer;
let client: OpenAI;

beforeAll(async () => {
  model = await loadModel(checkpointDir('qwen3-vl'));
  server = createServer({ model, modelId: MODEL_ID, resolver: createMediaResolver() });
  client = new OpenAI({ baseURL: `${await server.listen('127.0.0.1', 0)}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server?.drain(0);
  model?.dispose();
});

const reply = (text: string) => script([...model.tokenizer.encode(text), IM_END]);
const question: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Oslo?' }];

/** The prompt length the library makes of these messages and options. */
async function promptTokens(messages: ChatMessage[], tools?: ToolDefinition[]): Promise<number> {
  const p = await model.prepare(messages, { ...(tools ? { tools } : {}) } as never);
  return p.seqLength;
}

describe('tool calls', () => {
  it('answers a tool call as tool_calls, the prose as content', async () => {
    reply(CALL);
    const r = await client.chat.completions.create({ model: MODEL_ID, messages: question, tools: [WEATHER as OpenAI.ChatCompletionTool], temperature: 0 });
    const choice = r.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBe('Let me look.');
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe('function');
    expect(call.function).toEqual({ name: 'get_weather', arguments: '{"city":"Oslo"}' });
    expect(call.id).toMatch(/\S/);
    // The tools were in the prompt.
    expect(r.usage!.prompt_tokens).toBe(await promptTokens([{ role: 'user', content: 'Weather in Oslo?' }], [WEATHER]));
    expect(r.usage!.prompt_tokens).toBeGreaterThan(await promptTokens([{ role: 'user', content: 'Weather in Oslo?' }]));
  });

  it('streams the call as a tool_calls delta the client assembles', async () => {
    reply(CALL);
    const stream = client.chat.completions.stream({ model: MODEL_ID, messages: question, tools: [WEATHER as OpenAI.ChatCompletionTool], temperature: 0 });
    const done = await stream.finalChatCompletion();
    const choice = done.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBe('Let me look.');
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function).toEqual({ name: 'get_weather', arguments: '{"city":"Oslo"}' });
  });

  it('renders the round trip: the assistant call and the tool result, then answers', async () => {
    reply(CALL);
    const first = await client.chat.completions.create({ model: MODEL_ID, messages: question, tools: [WEATHER as OpenAI.ChatCompletionTool], temperature: 0 });
    const call = first.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      ...question,
      { role: 'assistant', content: first.choices[0].message.content, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '21 degrees, sunny' },
    ];
    reply('It is 21 degrees and sunny.');
    const r = await client.chat.completions.create({ model: MODEL_ID, messages, tools: [WEATHER as OpenAI.ChatCompletionTool], temperature: 0 });
    expect(r.choices[0].message.content).toBe('It is 21 degrees and sunny.');
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].message.tool_calls).toBeUndefined();
    const library: ChatMessage[] = [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: 'Let me look.', tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: call.id, content: '21 degrees, sunny' },
    ];
    expect(r.usage!.prompt_tokens).toBe(await promptTokens(library, [WEATHER]));
  });

  it('leaves the tools out with tool_choice "none", and gives a malformed block back as content', async () => {
    reply(CALL);
    const none = await client.chat.completions.create({ model: MODEL_ID, messages: question, tools: [WEATHER as OpenAI.ChatCompletionTool], tool_choice: 'none', temperature: 0 });
    expect(none.choices[0].message.content).toBe(CALL);
    expect(none.choices[0].message.tool_calls).toBeUndefined();
    expect(none.usage!.prompt_tokens).toBe(await promptTokens([{ role: 'user', content: 'Weather in Oslo?' }]));
    const broken = 'Hm.<tool_call>\n{"name": "get_weather", "arguments": \n</tool_call>';
    reply(broken);
    const r = await client.chat.completions.create({ model: MODEL_ID, messages: question, tools: [WEATHER as OpenAI.ChatCompletionTool], temperature: 0 });
    expect(r.choices[0].message.tool_calls).toBeUndefined();
    expect(r.choices[0].message.content).toBe(broken);
  });

  it('refuses a forced tool_choice (400 naming it)', async () => {
    const err = await client.chat.completions
      .create({ model: MODEL_ID, messages: question, tools: [WEATHER as OpenAI.ChatCompletionTool], tool_choice: 'required' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('tool_choice');
  });
});
