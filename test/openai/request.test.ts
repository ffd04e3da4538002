// The OpenAI request mapping: every field read into the library's options, every bad field a 400
// naming it, media URLs resolved under the resolver's policy, and the response objects.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import {
  OpenAIError,
  chatCompletion,
  chunk,
  createMediaResolver,
  parseChatRequest,
  toLibraryMessages,
  toOpenAIError,
  usageChunk,
} from '../../lib/openai/index.js';

const user = (content: unknown) => ({ model: 'm', messages: [{ role: 'user', content }] });

function refusal(body: unknown): OpenAIError {
  try {
    parseChatRequest(body);
  } catch (e) {
    expect(e).toBeInstanceOf(OpenAIError);
    return e as OpenAIError;
  }
  throw new Error('expected a refusal');
}

async function rejection(p: Promise<unknown>): Promise<OpenAIError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(OpenAIError);
    return e as OpenAIError;
  }
  throw new Error('expected a rejection');
}

describe('parseChatRequest', () => {
  it('reads the sampling fields into generation options', () => {
    const r = parseChatRequest({
      ...user('hi'),
      max_tokens: 9,
      temperature: 0.5,
      top_p: 0.9,
      top_k: -1,
      min_p: 0.1,
      repetition_penalty: 1.1,
      seed: 3,
      stop: 'x',
      presence_penalty: 0,
      frequency_penalty: 0,
      n: 1,
      stream: true,
      stream_options: { include_usage: true },
      user: 'someone',
      some_future_field: { anything: 1 },
    });
    expect(r.generate).toEqual({ maxTokens: 9, temperature: 0.5, doSample: true, topP: 0.9, topK: 0, minP: 0.1, repetitionPenalty: 1.1, seed: 3, stop: ['x'] });
    expect(r.stream).toBe(true);
    expect(r.includeUsage).toBe(true);
    expect(r.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('prefers max_completion_tokens, makes temperature 0 greedy, folds developer into system, joins text parts', () => {
    const r = parseChatRequest({
      model: 'm',
      messages: [
        { role: 'developer', content: [{ type: 'text', text: 'be ' }, { type: 'text', text: 'brief' }] },
        { role: 'user', content: 'q' },
      ],
      max_tokens: 5,
      max_completion_tokens: 7,
      temperature: 0,
    });
    expect(r.generate).toEqual({ maxTokens: 7, temperature: 0, doSample: false });
    expect(r.messages[0]).toEqual({ role: 'system', content: 'be brief' });
    expect(r.includeUsage).toBe(false);
  });

  it('keeps media parts with their param paths, and applies mm_processor_kwargs to videos', () => {
    const r = parseChatRequest({
      model: 'm',
      mm_processor_kwargs: { fps: 2, max_frames: 8 },
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'see' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
            { type: 'video_url', video_url: { url: 'data:video/mp4;base64,AAAA', max_frames: 4 } },
          ],
        },
      ],
    });
    expect(r.messages[0].content).toEqual([
      { type: 'text', text: 'see' },
      { type: 'image', url: 'data:image/png;base64,AAAA', param: 'messages[0].content[1].image_url.url' },
      { type: 'video', url: 'data:video/mp4;base64,AAAA', param: 'messages[0].content[2].video_url.url', fps: 2, maxFrames: 4 },
    ]);
  });

  it('reads assistant tool calls and tool results, and tools unless tool_choice is none', () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const body = {
      model: 'm',
      tools,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
      ],
    };
    const r = parseChatRequest(body);
    expect(r.tools).toEqual(tools);
    expect(r.generate.tools).toEqual(tools);
    expect(r.messages[1]).toEqual({ role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
    expect(r.messages[2]).toEqual({ role: 'tool', content: 'sunny', toolCallId: 'c1' });
    expect(parseChatRequest({ ...body, tool_choice: 'none' }).tools).toBeUndefined();
    expect(parseChatRequest({ ...body, tool_choice: 'none' }).generate.tools).toBeUndefined();
    expect(parseChatRequest({ ...body, chat_template_kwargs: { enable_thinking: false } }).generate.templateVariables).toEqual({ enable_thinking: false });
    expect(parseChatRequest({ ...body, tool_choice: 'auto' }).tools).toEqual(tools);
  });

  it.each([
    [{ messages: [] }, 'model'],
    [{ model: 'm' }, 'messages'],
    [{ model: 'm', messages: [] }, 'messages'],
    [{ model: 'm', messages: 'hi' }, 'messages'],
    [{ model: 'm', messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    [{ model: 'm', messages: [{ role: 'user' }] }, 'messages[0].content'],
    [user(7), 'messages[0].content'],
    [user([{ type: 'image_url', image_url: {} }]), 'messages[0].content[0].image_url.url'],
    [user([{ type: 'text' }]), 'messages[0].content[0].text'],
    [user([{ type: 'input_audio', input_audio: {} }]), 'messages[0].content[0].type'],
    [user([{ type: 'hologram' }]), 'messages[0].content[0].type'],
    [{ model: 'm', messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'data:' } }] }] }, 'messages[0].content[0]'],
    [{ ...user('x'), max_tokens: 0 }, 'max_tokens'],
    [{ ...user('x'), max_tokens: '5' }, 'max_tokens'],
    [{ ...user('x'), max_completion_tokens: 1.5 }, 'max_completion_tokens'],
    [{ ...user('x'), temperature: 3 }, 'temperature'],
    [{ ...user('x'), top_p: 0 }, 'top_p'],
    [{ ...user('x'), seed: -1 }, 'seed'],
    [{ ...user('x'), stop: [1] }, 'stop[0]'],
    [{ ...user('x'), stop: '' }, 'stop'],
    [{ ...user('x'), stream: 'yes' }, 'stream'],
    [{ ...user('x'), stream_options: { include_usage: true } }, 'stream_options'],
    [{ ...user('x'), n: 2 }, 'n'],
    [{ ...user('x'), logprobs: true }, 'logprobs'],
    [{ ...user('x'), logit_bias: { 5: 1 } }, 'logit_bias'],
    [{ ...user('x'), response_format: { type: 'xml' } }, 'response_format.type'],
    [{ ...user('x'), response_format: { type: 'json_schema' } }, 'response_format.json_schema'],
    [{ ...user('x'), response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', not: {} } } } }, 'response_format.json_schema.schema'],
    [{ ...user('x'), response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string' }, strict: 'yes' } } }, 'response_format.json_schema.strict'],
    [{ ...user('x'), presence_penalty: 0.5 }, 'presence_penalty'],
    [{ ...user('x'), frequency_penalty: 3 }, 'frequency_penalty'],
    [{ ...user('x'), tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'required' }, 'tool_choice'],
    [{ ...user('x'), tools: [{ type: 'retrieval' }] }, 'tools[0].type'],
    [{ ...user('x'), tools: [{ type: 'function', function: { name: 'bad name' } }] }, 'tools[0].function.name'],
    [{ ...user('x'), mm_processor_kwargs: { fps: 0 } }, 'mm_processor_kwargs.fps'],
    [{ ...user('x'), chat_template_kwargs: 'x' }, 'chat_template_kwargs'],
  ])('refuses %j at %s', (body, param) => {
    const e = refusal(body);
    expect(e.status).toBe(400);
    expect(e.param).toBe(param);
    expect(e.body().error).toMatchObject({ type: 'invalid_request_error', param });
    expect(e.message).toContain(param);
  });

  it('reads response_format into responseFormat (text: none)', () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    expect(parseChatRequest({ ...user('x'), response_format: { type: 'json_schema', json_schema: { name: 'n', schema, strict: true } } }).generate.responseFormat).toEqual({
      type: 'json_schema',
      schema,
      name: 'n',
    });
    expect(parseChatRequest({ ...user('x'), response_format: { type: 'json_object' } }).generate.responseFormat).toEqual({ type: 'json_object' });
    expect(parseChatRequest({ ...user('x'), response_format: { type: 'text' } }).generate.responseFormat).toBeUndefined();
  });

  it('refuses a body that is not an object without a param', () => {
    const e = refusal([1, 2]);
    expect(e.param).toBeNull();
    expect(e.status).toBe(400);
  });
});

describe('toOpenAIError', () => {
  it('maps library codes to statuses and message locations to params', () => {
    const e = toOpenAIError(new QwenVLError('E_INPUT', 'conversation 0, message 2, part 1: image: bad'));
    expect([e.status, e.param, e.code]).toEqual([400, 'messages[2].content[1]', 'invalid_input']);
    expect(toOpenAIError(new QwenVLError('E_CONTEXT_OVERFLOW', 'too long')).body().error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
    expect(toOpenAIError(new QwenVLError('E_DISPOSED', 'x')).status).toBe(503);
    expect(toOpenAIError(new QwenVLError('E_NATIVE', 'x')).status).toBe(500);
    const internal = toOpenAIError(new Error('secret /etc/path'));
    expect(internal.status).toBe(500);
    expect(internal.message).not.toContain('secret');
  });
});

describe('media resolver', () => {
  let dir: string;
  let server: Server;
  let base: string;
  const png = readFileSync(join(__dirname, '../fixtures/qwen2-vl/inputs/gradient_224x224.png'));
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qwenvl-openai-'));
    mkdirSync(join(dir, 'allowed'));
    writeFileSync(join(dir, 'allowed', 'a.png'), png);
    writeFileSync(join(dir, 'outside.png'), png);
    symlinkSync(join(dir, 'outside.png'), join(dir, 'allowed', 'link.png'));
    server = createServer((req, res) => {
      if (req.url === '/a.png') res.end(png);
      else if (req.url === '/redirect') res.writeHead(302, { location: '/a.png' }).end();
      else if (req.url === '/big') res.writeHead(200, { 'content-length': String(10_000_000) }).end();
      else if (req.url === '/stall') res.writeHead(200).write('x');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes image data: URLs through and turns video data: URLs into a session file it deletes on close', async () => {
    const s = createMediaResolver().session();
    expect(await s.resolve('data:image/png;base64,AAAA', 'image', 'p')).toBe('data:image/png;base64,AAAA');
    expect(s.media()).toEqual({ localFiles: 'deny' });
    const file = (await s.resolve(`data:video/mp4;base64,${Buffer.from('abc').toString('base64')}`, 'video', 'p')) as string;
    expect(readFileSync(file, 'utf8')).toBe('abc');
    expect(s.media()).toEqual({ localFiles: [join(file, '..')] });
    await s.close();
    expect(existsSync(file)).toBe(false);
    const bad = await rejection(s.resolve('data:text/plain;base64,AAAA', 'video', 'messages[0].content[0].video_url.url'));
    expect(bad.param).toBe('messages[0].content[0].video_url.url');
  });

  it('refuses local paths by default and outside the allowed folders, without saying which', async () => {
    const deny = createMediaResolver().session();
    expect((await rejection(deny.resolve(join(dir, 'allowed', 'a.png'), 'image', 'p'))).code).toBe('local_files_refused');
    const roots = createMediaResolver({ localFiles: [join(dir, 'allowed')] }).session();
    expect(await roots.resolve(join(dir, 'allowed', 'a.png'), 'image', 'p')).toMatch(/a\.png$/);
    const outside = await rejection(roots.resolve(join(dir, 'outside.png'), 'image', 'p'));
    const missing = await rejection(roots.resolve(join(dir, 'allowed', 'nope.png'), 'image', 'p'));
    const link = await rejection(roots.resolve(join(dir, 'allowed', 'link.png'), 'image', 'p'));
    expect(outside.message).toBe(missing.message);
    expect(link.message).toBe(missing.message);
    expect(outside.message).not.toContain(dir);
    expect((await rejection(roots.resolve('a.png', 'image', 'p'))).message).toMatch(/relative/);
    const rel = createMediaResolver({ localFiles: 'allow', baseDir: join(dir, 'allowed') }).session();
    expect(await rel.resolve('a.png', 'image', 'p')).toBe(join(dir, 'allowed', 'a.png'));
    expect(rel.media()).toEqual({});
  });

  it('fetches http(s) only when enabled, within its byte and time limits', async () => {
    const off = createMediaResolver().session();
    expect((await rejection(off.resolve(`${base}/a.png`, 'image', 'p'))).code).toBe('remote_media_disabled');
    const on = createMediaResolver({ remote: { maxBytes: 1_000_000, timeoutMs: 500 } }).session();
    expect(Buffer.compare((await on.resolve(`${base}/redirect`, 'image', 'p')) as Buffer, png)).toBe(0);
    expect((await rejection(on.resolve(`${base}/missing`, 'image', 'p'))).message).toMatch(/HTTP 404/);
    expect((await rejection(on.resolve(`${base}/big`, 'image', 'p'))).status).toBe(413);
    expect((await rejection(on.resolve(`${base}/stall`, 'image', 'p'))).message).toMatch(/within 500 ms/);
    expect((await rejection(on.resolve('ftp://x/y', 'image', 'p'))).message).toMatch(/scheme/);
    // A fetched video becomes a file of the session, which the session's policy admits.
    const video = (await on.resolve(`${base}/a.png`, 'video', 'p')) as string;
    expect(Buffer.compare(readFileSync(video), png)).toBe(0);
    expect(on.media()).toEqual({ localFiles: [join(video, '..')] });
    await on.close();
    expect(existsSync(video)).toBe(false);
  });

  it('converts a request to library messages in order', async () => {
    const req = parseChatRequest({
      model: 'm',
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: 'data:image/png;base64,AAAA' }, { type: 'text', text: 'x' }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', content: 'r', tool_call_id: 'c' },
      ],
    });
    const s = createMediaResolver().session();
    expect(await toLibraryMessages(req, s)).toEqual([
      { role: 'user', content: [{ type: 'image', image: 'data:image/png;base64,AAAA' }, { type: 'text', text: 'x' }] },
      { role: 'assistant', content: '', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
      { role: 'tool', content: 'r', tool_call_id: 'c' },
    ]);
  });
});

describe('responses', () => {
  const meta = { id: 'chatcmpl-1', created: 5, model: 'm' };
  const result = { text: 'hi', tokens: [1, 2], usage: { promptTokens: 3, completionTokens: 2, totalTokens: 5 }, finishReason: 'stop' as const };
  it('builds completion, chunk and usage objects', () => {
    expect(chatCompletion(meta, result, 'hi')).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 5,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi', refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: '{}' } };
    const withCall = chatCompletion(meta, { ...result, text: '\n', toolCalls: [call], finishReason: 'tool_calls', reasoning: 'hmm' });
    expect(withCall.choices[0]).toEqual({
      index: 0,
      message: { role: 'assistant', content: null, refusal: null, reasoning_content: 'hmm', tool_calls: [call] },
      finish_reason: 'tool_calls',
      logprobs: null,
    });
    expect(chatCompletion(meta, { ...result, finishReason: 'length' }, 'hi').choices[0].finish_reason).toBe('length');
    expect(chunk(meta, { content: 'a' }, null, true)).toEqual({
      id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 5, model: 'm',
      choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null, logprobs: null }], usage: null,
    });
    expect(usageChunk(meta, result)).toMatchObject({ choices: [], usage: { total_tokens: 5 } });
  });
});

