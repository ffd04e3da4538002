// The batch command's use of lib/openai: defaults it fills in, media paths relative to the
// requests file, tools passed on and tool calls answered, and its error lines.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { batchLineError, createBatchMapping } from '../../lib/batch/openai-mapping.js';
import { QwenVLError } from '../../lib/errors.js';
import type { ChatResult } from '../../lib/model/model.js';
import { OpenAIError } from '../../lib/openai/index.js';

const dir = mkdtempSync(join(tmpdir(), 'qwenvl-batch-map-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = new AbortController().signal;

const result = (text: string): ChatResult => ({ text, tokens: [1], usage: { promptTokens: 2, completionTokens: 1, totalTokens: 3 }, finishReason: 'stop' });

describe('batch mapping', () => {
  it('fills in model and max_tokens when the body has none, ignores stream, resolves paths against the base folder', async () => {
    writeFileSync(join(dir, 'a.png'), 'x');
    const mapping = createBatchMapping({ modelName: 'm', baseDir: dir, maxTokens: 9 });
    const call = await mapping.prepare(
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'a.png' } }] }], stream: true, temperature: 0 },
      signal,
    );
    expect(call.messages[0].content).toEqual([{ type: 'image', image: join(dir, 'a.png') }]);
    expect(call.options).toMatchObject({ maxTokens: 9, temperature: 0 });
    const body = call.complete(result('hi')) as { model: string; choices: { message: { content: string } }[] };
    expect(body.model).toBe('m');
    expect(body.choices[0].message.content).toBe('hi');
    await call.close();
    // The body's own values win.
    const own = await mapping.prepare({ model: 'x', messages: [{ role: 'user', content: 'q' }], max_completion_tokens: 3 }, signal);
    expect(own.options.maxTokens).toBe(3);
    expect((own.complete(result('')) as { model: string }).model).toBe('x');
  });

  it('refuses http(s) media unless enabled', async () => {
    const mapping = createBatchMapping({ modelName: 'm', baseDir: dir });
    const body = { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://127.0.0.1:9/a.png' } }] }] };
    const e = await mapping.prepare(body, signal).catch((x: unknown) => x);
    expect(batchLineError(e)).toMatchObject({ code: 'E_INPUT', param: 'messages[0].content[0].image_url.url', message: expect.stringContaining('does not fetch http(s)') });
  });

  it('tools: passed on to the library; parsed tool calls become tool_calls, a malformed block stays in the content', async () => {
    const body = { messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'get_weather' } }] };
    const mapping = createBatchMapping({ modelName: 'm', baseDir: dir });
    const call = await mapping.prepare(body, signal);
    expect((call.options as Record<string, unknown>).tools).toEqual([expect.objectContaining({ function: expect.objectContaining({ name: 'get_weather' }) })]);
    const toolCall = { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } };
    const out = call.complete({ ...result('Let me look. '), finishReason: 'tool_calls', toolCalls: [toolCall] }) as {
      choices: { message: { content: string; tool_calls: { function: { name: string; arguments: string } }[] }; finish_reason: string }[];
    };
    expect(out.choices[0].finish_reason).toBe('tool_calls');
    expect(out.choices[0].message.content).toBe('Let me look. ');
    expect(out.choices[0].message.tool_calls[0].function).toEqual({ name: 'get_weather', arguments: '{"city":"Oslo"}' });
    const raw = '<tool_call>{"name": </tool_call>';
    const bad = call.complete({ ...result('Hmm. '), toolCallErrors: [{ index: 0, raw, message: 'not JSON' }] }) as { choices: { message: { content: string } }[] };
    expect(bad.choices[0].message.content).toBe(`Hmm. ${raw}`);
  });

  it('error lines: library codes, OpenAI 4xx as E_INPUT / E_UNSUPPORTED with the field, anything else E_INTERNAL', () => {
    expect(batchLineError(new QwenVLError('E_CONTEXT_OVERFLOW', 'conversation 0, message 2: too long'))).toEqual({
      code: 'E_CONTEXT_OVERFLOW',
      message: 'conversation 0, message 2: too long',
      param: 'messages[2]',
    });
    expect(batchLineError(new OpenAIError(400, 'n: only n = 1', 'invalid_request_error', 'n', 'unsupported'))).toEqual({ code: 'E_UNSUPPORTED', message: 'n: only n = 1', param: 'n' });
    expect(batchLineError(new OpenAIError(413, 'too big', 'invalid_request_error', null, 'media_too_large'))).toEqual({ code: 'E_INPUT', message: 'too big' });
    expect(batchLineError(new TypeError('oops'))).toEqual({ code: 'E_INTERNAL', message: 'oops' });
  });
});
