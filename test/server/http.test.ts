// `qwenvl serve` over raw HTTP: malformed and oversized bodies, wrong types, unknown fields, API
// keys, slow clients (reading and sending), a full queue; every error in OpenAI's JSON shape.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { createMediaResolver } from '../../lib/openai/media.js';
import { createServer, type QwenVLServer, type ServerOptions } from '../../lib/server/server.js';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';
import { metricValue, scrape, waitFor } from './helpers.js';

const MODEL_ID = 'fixture';
let model: Model;
const servers: QwenVLServer[] = [];

beforeAll(async () => {
  model = await loadModel(checkpointDir('qwen3-vl'));
});
afterAll(async () => {
  for (const s of servers) await s.drain(0);
  model?.dispose();
});

async function start(options: Partial<ServerOptions> = {}): Promise<string> {
  const s = createServer({ model, modelId: MODEL_ID, resolver: createMediaResolver(), ...options });
  servers.push(s);
  return s.listen('127.0.0.1', 0);
}

const body = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, temperature: 0, ...extra });

async function post(base: string, text: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
  const raw = await r.text();
  return { status: r.status, json: raw ? JSON.parse(raw) : null, headers: r.headers };
}

function expectError(json: any, code: string | null, param: string | null = null): void {
  expect(Object.keys(json)).toEqual(['error']);
  expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(json.error.code).toBe(code);
  expect(json.error.param).toBe(param);
  expect(typeof json.error.message).toBe('string');
}

/** A raw HTTP/1.1 request on its own socket; resolves to the socket once written. */
function rawRequest(base: string, head: string, payload: string): Promise<Socket> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname, () => {
      s.write(head + payload);
      resolve(s);
    });
    s.on('error', reject);
  });
}

function readAll(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('close', () => resolve(text));
  });
}

/** The content of an SSE chat stream's chunks, joined, and whether it ended with [DONE]. */
function sseText(raw: string): { text: string; done: boolean } {
  let text = '';
  let done = false;
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const data = line.slice(6);
    if (data === '[DONE]') done = true;
    else text += JSON.parse(data).choices[0]?.delta?.content ?? '';
  }
  return { text, done };
}

describe('raw HTTP', () => {
  let base: string;
  beforeAll(async () => {
    base = await start({ bodyLimit: 64 * 1024 });
  });

  it('answers malformed JSON with 400 invalid_json', async () => {
    const r = await post(base, '{"model": "fixture", "messages": [');
    expect(r.status).toBe(400);
    expectError(r.json, 'invalid_json');
  });

  it('refuses prototype-poisoning keys', async () => {
    const r = await post(base, '{"model":"fixture","messages":[{"role":"user","content":"x"}],"__proto__":{"admin":true}}');
    expect(r.status).toBe(400);
    expectError(r.json, 'invalid_json');
  });

  it('answers an oversized body with 413', async () => {
    const r = await post(base, body({ padding: 'x'.repeat(100 * 1024) }));
    expect(r.status).toBe(413);
    expectError(r.json, 'request_too_large');
  });

  it('answers wrong types with 400 naming the field', async () => {
    for (const [extra, param] of [
      [{ max_tokens: 'ten' }, 'max_tokens'],
      [{ temperature: [1] }, 'temperature'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: 5 }] }] }, 'messages[0].content[0].image_url'],
      [{ messages: { role: 'user' } }, 'messages'],
      [{ stream: 1 }, 'stream'],
    ] as const) {
      const r = await post(base, body(extra));
      expect(r.status).toBe(400);
      expectError(r.json, 'invalid_type', param);
    }
  });

  it('ignores unknown fields (as vLLM), but refuses known ones it cannot honour', async () => {
    const ok = await post(base, body({ some_new_option: { nested: true }, user: 'u', metadata: { a: 'b' }, parallel_tool_calls: true }));
    expect(ok.status).toBe(200);
    expect(ok.json.object).toBe('chat.completion');
    const refused = await post(base, body({ logit_bias: { 5: 1 } }));
    expect(refused.status).toBe(400);
    expectError(refused.json, 'unsupported', 'logit_bias');
  });

  it('response_format json_schema: the answer validates; an unsupported keyword is a 400 naming it', async () => {
    const schema = {
      type: 'object',
      properties: { answer: { type: 'string', maxLength: 10 }, n: { type: 'integer', minimum: 0, maximum: 9 } },
      required: ['answer', 'n'],
      additionalProperties: false,
    };
    const format = { type: 'json_schema', json_schema: { name: 'reply', schema, strict: true } };
    const r = await post(base, body({ response_format: format, max_tokens: 300 }));
    expect(r.status).toBe(200);
    expect(r.json.choices[0].finish_reason).toBe('stop');
    const value = JSON.parse(r.json.choices[0].message.content) as { answer: unknown; n: unknown };
    expect(Object.keys(value)).toEqual(['answer', 'n']);
    expect(typeof value.answer === 'string' && value.answer.length <= 10).toBe(true);
    expect(Number.isInteger(value.n) && (value.n as number) >= 0 && (value.n as number) <= 9).toBe(true);
    const obj = await post(base, body({ response_format: { type: 'json_object' }, max_tokens: 6 }));
    expect(obj.status).toBe(200);
    expect((obj.json.choices[0].message.content as string).startsWith('{')).toBe(true);
    const bad = await post(base, body({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', not: {} } } } }));
    expect(bad.status).toBe(400);
    expectError(bad.json, 'unsupported', 'response_format.json_schema.schema');
    expect(bad.json.error.message).toMatch(/not/);
  });

  it('answers a non-JSON content type with 415 and an unknown route with 404, in the same shape', async () => {
    const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
    expect(r.status).toBe(415);
    expectError(await r.json(), 'unsupported_media_type');
    const nf = await fetch(`${base}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(nf.status).toBe(404);
    expectError(await nf.json(), 'not_found');
  });

  it('reports an over-long prompt as 400 context_length_exceeded', async () => {
    const roomy = await start();
    const r = await post(roomy, body({ messages: [{ role: 'user', content: 'word '.repeat(40_000) }] }));
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('context_length_exceeded');
  });

  it('gives a client that reads slowly the whole stream', async () => {
    const plain = await post(base, body({ max_tokens: 40 }));
    const payload = body({ max_tokens: 40, stream: true });
    const s = await rawRequest(base, `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n`, payload);
    s.pause();
    await new Promise((r) => setTimeout(r, 500));
    const raw = readAll(s);
    s.resume();
    const got = sseText(await raw);
    expect(got).toEqual({ text: plain.json.choices[0].message.content, done: true });
  });

  it('aborts a plain (non-streamed) request whose client goes away', async () => {
    const before = metricValue(await scrape(base), 'qwenvl_requests_aborted_total{reason="client"}');
    const gone = new AbortController();
    const pending = fetch(`${base}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ max_tokens: 20000 }), signal: gone.signal,
    });
    await waitFor(async () => metricValue(await scrape(base), 'qwenvl_requests_running') === 1);
    gone.abort();
    await expect(pending).rejects.toThrow();
    await waitFor(async () => {
      const m = await scrape(base);
      return metricValue(m, 'qwenvl_requests_running') === 0 && metricValue(m, 'qwenvl_requests_aborted_total{reason="client"}') === before + 1;
    });
    expect(metricValue(await scrape(base), 'qwenvl_generation_tokens_total')).toBeLessThan(20000);
  });

  it('times out a client that stops sending its request (408)', async () => {
    const slow = await start({ requestTimeoutMs: 300 });
    const s = await rawRequest(slow, `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n`, '{"model":');
    const raw = await readAll(s);
    expect(raw).toMatch(/^HTTP\/1\.1 408/);
  });
});

describe('local media', () => {
  it('reads image paths under --allowed-local-media folders only, refusing the rest alike', async () => {
    const inputs = join(fixtureDir('qwen3-vl'), 'inputs');
    const base = await start({ resolver: createMediaResolver({ localFiles: [inputs] }) });
    const withImage = (url: string) => body({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'x' }] }] });
    const ok = await post(base, withImage(join(inputs, 'gradient_224x224.png')));
    expect(ok.status).toBe(200);
    expect(ok.json.usage.prompt_tokens).toBeGreaterThan(40);
    const viaUrl = await post(base, withImage(pathToFileURL(join(inputs, 'gradient_224x224.png')).href));
    expect(viaUrl.json.usage).toEqual(ok.json.usage);
    const outside = await post(base, withImage(join(checkpointDir('qwen3-vl'), 'config.json')));
    const missing = await post(base, withImage(join(inputs, 'nope.png')));
    const escape = await post(base, withImage(join(inputs, '..', 'checkpoint', 'config.json')));
    for (const r of [outside, missing, escape]) {
      expect(r.status).toBe(400);
      expectError(r.json, 'local_files_refused', 'messages[0].content[0].image_url.url');
      expect(r.json.error.message).toBe(missing.json.error.message);
      expect(r.json.error.message).not.toContain(inputs);
    }
  });
});

describe('API key', () => {
  it('requires the key on /v1/ and leaves /health and /metrics open', async () => {
    const base = await start({ apiKey: 'sekret' });
    const none = await post(base, body());
    expect(none.status).toBe(401);
    expectError(none.json, 'invalid_api_key');
    const wrong = await post(base, body(), { authorization: 'Bearer sekret2' });
    expect(wrong.status).toBe(401);
    expect((await fetch(`${base}/v1/models`)).status).toBe(401);
    const right = await post(base, body(), { authorization: 'Bearer sekret' });
    expect(right.status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });
});

describe('admission', () => {
  it('queues past max-running, refuses past max-queue with 429, and serves the queue once a slot frees', async () => {
    const base = await start({ maxRunning: 1, maxQueue: 1 });
    const long = new AbortController();
    const first = fetch(`${base}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ max_tokens: 20000, stream: true }), signal: long.signal,
    });
    const firstRes = await first;
    expect(firstRes.status).toBe(200);
    const reader = firstRes.body!.getReader();
    await reader.read();
    const queued = post(base, body({ max_tokens: 3 }));
    await waitFor(async () => metricValue(await scrape(base), 'qwenvl_requests_queued') === 1);
    const refused = await post(base, body());
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expectError(refused.json, 'queue_full');
    long.abort();
    const served = await queued;
    expect(served.status).toBe(200);
    expect(served.json.usage.completion_tokens).toBe(3);
    const m = await scrape(base);
    expect(metricValue(m, 'qwenvl_requests_total{endpoint="/v1/chat/completions",status="429"}')).toBe(1);
    expect(metricValue(m, 'qwenvl_requests_running')).toBe(0);
  });
});
