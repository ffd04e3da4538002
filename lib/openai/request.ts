/**
 * An OpenAI Chat Completions request body, checked field by field ({@link parseChatRequest}) and
 * turned into the library's messages and generation options ({@link toLibraryMessages}). Every
 * refusal is an {@link OpenAIError} (400) naming the field, as `messages[2].content[0].image_url.url`.
 *
 * Fields: see README ("Server"). Unknown top-level fields are ignored, as vLLM does, so that clients
 * sending newer parameters keep working; known fields the library cannot honour (`n` > 1,
 * `logprobs`, `logit_bias`, a schema keyword structured output cannot guarantee, non-zero presence or frequency
 * penalties, a forced `tool_choice`) are refused rather than silently dropped.
 * @internal
 * @module
 */
import type { GenerateOptions } from '../generate/options.js';
import type { RequestOptions } from '../model/model.js';
import type { ToolDefinition } from '../text/tool-messages.js';
import { STOP_LIMITS } from '../generate/options.js';
import type { ChatMessage, ContentPart } from '../text/chat-template.js';
import { badRequest } from './errors.js';
import { QwenVLError } from '../errors.js';
import { readResponseFormat, type ResponseFormat } from '../structured/response-format.js';
import type { MediaSession } from './media.js';

/** A text, image or video part of a checked message. @internal */
export type RequestPart =
  | { type: 'text'; text: string }
  | { type: 'image'; url: string; param: string }
  | { type: 'video'; url: string; param: string; fps?: number; maxFrames?: number };

/** A tool call of an assistant message, as sent (arguments a JSON string). @internal */
export interface RequestToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A checked message: `developer` is folded into `system`. @internal */
export interface RequestMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** Text alone (every text part joined), or parts when it holds an image or video. */
  content: string | RequestPart[];
  toolCalls?: RequestToolCall[];
  toolCallId?: string;
}

/** A function tool, passed to the chat template as sent. @internal */
export type RequestTool = ToolDefinition;

/** A checked Chat Completions request. @internal */
export interface ChatRequest {
  model: string;
  messages: RequestMessage[];
  /**
   * The library options it sets (no signal; defaults are the model's): sampling, stop strings, its
   * tools and chat template variables.
   */
  generate: GenerateOptions & Pick<RequestOptions, 'tools' | 'templateVariables'>;
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with the usage. */
  includeUsage: boolean;
  /**
   * The tools the model is told about (also in `generate.tools`); undefined without tools or with
   * `tool_choice: "none"`.
   */
  tools?: RequestTool[];
}

/** Most messages, parts per message and tools one request may hold. @internal */
export const REQUEST_LIMITS = { messages: 4096, parts: 1024, tools: 256 } as const;

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

function want(param: string, what: string, v: unknown): never {
  throw badRequest(param || null, `expected ${what}, got ${kind(v)}`, 'invalid_type');
}

/** A number field of `o` (null: unset); `within` prefixes the param path of nested objects. */
function optNumber(o: Obj, key: string, ok: (x: number) => boolean, what: string, within = ''): number | undefined {
  const v = o[key];
  const param = within ? `${within}.${key}` : key;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) want(param, what, v);
  if (!ok(v)) throw badRequest(param, `expected ${what}, got ${v}`, 'invalid_value');
  return v;
}

function optInt(o: Obj, key: string, min: number, within = ''): number | undefined {
  return optNumber(o, key, (x) => Number.isSafeInteger(x) && x >= min, `an integer >= ${min}`, within);
}

function optBool(o: Obj, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') want(key, 'a boolean', v);
  return v;
}

function str(v: unknown, param: string): string {
  if (typeof v !== 'string') want(param, 'a string', v);
  return v;
}

function textOfParts(parts: readonly RequestPart[]): string {
  return parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
}

/** Reads a `video_url` part's sampling fields (vLLM: `fps`, `max_frames` beside `url`). */
function videoSampling(o: Obj, param: string): { fps?: number; maxFrames?: number } {
  const fps = optNumber(o, 'fps', (x) => x > 0, 'a number > 0', param);
  const maxFrames = optInt(o, 'max_frames', 1, param);
  return { ...(fps !== undefined ? { fps } : {}), ...(maxFrames !== undefined ? { maxFrames } : {}) };
}

function parsePart(raw: unknown, param: string, role: RequestMessage['role']): RequestPart {
  if (!isObj(raw)) want(param, 'a content part object', raw);
  const type = raw.type;
  if (typeof type !== 'string') want(`${param}.type`, 'a string', type);
  const media = role === 'user';
  switch (type) {
    case 'text':
      return { type: 'text', text: str(raw.text, `${param}.text`) };
    case 'refusal':
      if (role !== 'assistant') break;
      return { type: 'text', text: str(raw.refusal, `${param}.refusal`) };
    case 'image_url': {
      if (!media) throw badRequest(param, `images are accepted in user messages only, not in ${role} messages`);
      const iu = raw.image_url;
      const url = typeof iu === 'string' ? iu : isObj(iu) ? iu.url : want(`${param}.image_url`, 'an object with a url', iu);
      const at = typeof iu === 'string' ? `${param}.image_url` : `${param}.image_url.url`;
      if (typeof url !== 'string' || url.length === 0) want(at, 'a non-empty URL string', url);
      return { type: 'image', url, param: at };
    }
    case 'video_url': {
      if (!media) throw badRequest(param, `videos are accepted in user messages only, not in ${role} messages`);
      const vu = raw.video_url;
      const url = typeof vu === 'string' ? vu : isObj(vu) ? vu.url : want(`${param}.video_url`, 'an object with a url', vu);
      const at = typeof vu === 'string' ? `${param}.video_url` : `${param}.video_url.url`;
      if (typeof url !== 'string' || url.length === 0) want(at, 'a non-empty URL string', url);
      return { type: 'video', url, param: at, ...(isObj(vu) ? videoSampling(vu, `${param}.video_url`) : {}) };
    }
    case 'input_audio':
    case 'file':
      throw badRequest(`${param}.type`, `'${type}' parts are not supported (this model reads text, images and videos)`, 'unsupported');
  }
  throw badRequest(`${param}.type`, `unknown part type '${type}' (expected text, image_url or video_url)`, 'invalid_value');
}

function parseContent(raw: unknown, param: string, role: RequestMessage['role'], optional: boolean): string | RequestPart[] {
  if (raw === undefined || raw === null) {
    if (optional) return '';
    want(param, 'a string or an array of parts', raw);
  }
  if (typeof raw === 'string') return raw;
  if (!Array.isArray(raw)) want(param, 'a string or an array of parts', raw);
  if (raw.length > REQUEST_LIMITS.parts) throw badRequest(param, `at most ${REQUEST_LIMITS.parts} parts`);
  const parts = raw.map((p, i) => parsePart(p, `${param}[${i}]`, role));
  // Text alone is one string (what every template renders alike); parts stay when media is there.
  return parts.every((p) => p.type === 'text') ? textOfParts(parts) : parts;
}

function parseToolCalls(raw: unknown, param: string): RequestToolCall[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) want(param, 'an array of tool calls', raw);
  return raw.map((c, i) => {
    const at = `${param}[${i}]`;
    if (!isObj(c)) want(at, 'a tool call object', c);
    if (c.type !== undefined && c.type !== 'function') throw badRequest(`${at}.type`, `expected 'function'`);
    const fn = c.function;
    if (!isObj(fn)) want(`${at}.function`, 'an object with name and arguments', fn);
    const args = fn.arguments;
    return {
      id: c.id === undefined ? `call_${i}` : str(c.id, `${at}.id`),
      name: str(fn.name, `${at}.function.name`),
      arguments: typeof args === 'string' ? args : isObj(args) ? JSON.stringify(args) : want(`${at}.function.arguments`, 'a JSON string', args),
    };
  });
}

function parseMessage(raw: unknown, i: number): RequestMessage {
  const param = `messages[${i}]`;
  if (!isObj(raw)) want(param, 'a message object', raw);
  const role = raw.role;
  if (typeof role !== 'string') want(`${param}.role`, 'a string', role);
  switch (role) {
    case 'system':
    case 'developer':
      return { role: 'system', content: parseContent(raw.content, `${param}.content`, 'system', false) };
    case 'user':
      return { role: 'user', content: parseContent(raw.content, `${param}.content`, 'user', false) };
    case 'assistant': {
      const toolCalls = parseToolCalls(raw.tool_calls, `${param}.tool_calls`);
      const content = parseContent(raw.content, `${param}.content`, 'assistant', toolCalls !== undefined);
      return { role: 'assistant', content, ...(toolCalls ? { toolCalls } : {}) };
    }
    case 'tool': {
      const id = raw.tool_call_id;
      return {
        role: 'tool',
        content: parseContent(raw.content, `${param}.content`, 'tool', false),
        ...(id !== undefined && id !== null ? { toolCallId: str(id, `${param}.tool_call_id`) } : {}),
      };
    }
  }
  throw badRequest(`${param}.role`, `unknown role '${role}' (expected system, developer, user, assistant or tool)`, 'invalid_value');
}

function parseStop(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : want('stop', 'a string or an array of strings', v);
  if (list.length > STOP_LIMITS.count) throw badRequest('stop', `at most ${STOP_LIMITS.count} strings`);
  return list.map((s, i) => {
    const at = typeof v === 'string' ? 'stop' : `stop[${i}]`;
    if (typeof s !== 'string') want(at, 'a string', s);
    if (s.length === 0 || s.length > STOP_LIMITS.length) throw badRequest(at, `expected 1 to ${STOP_LIMITS.length} characters`);
    return s;
  });
}

function parseTools(body: Obj): RequestTool[] | undefined {
  const raw = body.tools;
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) want('tools', 'an array of tools', raw);
  if (raw.length > REQUEST_LIMITS.tools) throw badRequest('tools', `at most ${REQUEST_LIMITS.tools} tools`);
  const tools = raw.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObj(t)) want(at, 'a tool object', t);
    if (t.type !== 'function') throw badRequest(`${at}.type`, `only 'function' tools are supported`, 'invalid_value');
    const fn = t.function;
    if (!isObj(fn)) want(`${at}.function`, 'an object', fn);
    const name = str(fn.name, `${at}.function.name`);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw badRequest(`${at}.function.name`, 'expected 1 to 64 letters, digits, _ . or -', 'invalid_value');
    if (fn.description !== undefined) str(fn.description, `${at}.function.description`);
    if (fn.parameters !== undefined && !isObj(fn.parameters)) want(`${at}.function.parameters`, 'a JSON schema object', fn.parameters);
    return { type: 'function' as const, function: fn as RequestTool['function'] };
  });
  const choice = body.tool_choice;
  if (choice === undefined || choice === null || choice === 'auto') return tools.length > 0 ? tools : undefined;
  if (choice === 'none') return undefined;
  if (choice === 'required' || isObj(choice)) {
    throw badRequest('tool_choice', `forcing a tool call is not supported yet (use "auto" or "none")`, 'unsupported');
  }
  throw badRequest('tool_choice', `expected "auto", "none", "required" or a function, got ${kind(choice)}`, 'invalid_value');
}

/** Refuses fields the library cannot honour yet, when set to anything but their neutral value. */
function refuseUnsupported(body: Obj): void {
  const n = optInt(body, 'n', 1);
  if (n !== undefined && n !== 1) throw badRequest('n', 'only n = 1 is supported', 'unsupported');
  if (optBool(body, 'logprobs')) throw badRequest('logprobs', 'log probabilities are not supported yet', 'unsupported');
  if (body.top_logprobs !== undefined && body.top_logprobs !== null && body.top_logprobs !== 0) {
    throw badRequest('top_logprobs', 'log probabilities are not supported yet', 'unsupported');
  }
  const bias = body.logit_bias;
  if (bias !== undefined && bias !== null) {
    if (!isObj(bias)) want('logit_bias', 'an object', bias);
    if (Object.keys(bias).length > 0) throw badRequest('logit_bias', 'logit bias is not supported yet', 'unsupported');
  }
  for (const key of ['presence_penalty', 'frequency_penalty']) {
    const v = optNumber(body, key, (x) => x >= -2 && x <= 2, 'a number from -2 to 2');
    if (v !== undefined && v !== 0) throw badRequest(key, `not supported yet; use repetition_penalty (> 1 discourages repeats)`, 'unsupported');
  }
  const modalities = body.modalities;
  if (Array.isArray(modalities) && modalities.some((m) => m !== 'text')) throw badRequest('modalities', 'only text output is supported', 'unsupported');
}

/**
 * `response_format`: `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema",
 * "json_schema": {"name", "schema", "strict"?}}`, compiled here so that a schema the library cannot
 * guarantee is a 400 naming the keyword (the output always follows the schema, strict or not).
 */
function parseResponseFormat(body: Obj): ResponseFormat | undefined {
  const format = body.response_format;
  if (format === undefined || format === null) return undefined;
  if (!isObj(format)) want('response_format', 'an object', format);
  let out: ResponseFormat;
  if (format.type === 'text') return undefined;
  if (format.type === 'json_object') {
    out = { type: 'json_object' };
  } else if (format.type === 'json_schema') {
    const js = format.json_schema;
    if (!isObj(js)) want('response_format.json_schema', 'an object with a schema', js);
    if (js.name !== undefined && typeof js.name !== 'string') want('response_format.json_schema.name', 'a string', js.name);
    if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean') want('response_format.json_schema.strict', 'a boolean', js.strict);
    const schema = js.schema;
    if (typeof schema !== 'boolean' && !isObj(schema)) want('response_format.json_schema.schema', 'a JSON schema object', schema);
    out = { type: 'json_schema', schema, ...(typeof js.name === 'string' ? { name: js.name } : {}) };
  } else {
    throw badRequest('response_format.type', `expected 'text', 'json_object' or 'json_schema', got ${JSON.stringify(format.type) ?? 'nothing'}`);
  }
  try {
    readResponseFormat('response_format', out);
  } catch (e) {
    if (!(e instanceof QwenVLError)) throw e;
    const param = out.type === 'json_schema' ? 'response_format.json_schema.schema' : 'response_format';
    throw badRequest(param, e.message.replace(/^response_format(\.schema)?: /, ''), e.code === 'E_UNSUPPORTED' ? 'unsupported' : null);
  }
  return out;
}

function parseGenerate(body: Obj): GenerateOptions {
  const maxCompletion = optInt(body, 'max_completion_tokens', 1);
  const maxTokens = maxCompletion ?? optInt(body, 'max_tokens', 1);
  const temperature = optNumber(body, 'temperature', (x) => x >= 0 && x <= 2, 'a number from 0 to 2');
  const topP = optNumber(body, 'top_p', (x) => x > 0 && x <= 1, 'a number in (0, 1]');
  // vLLM's extras: top_k -1 or 0 is off.
  const topK = optNumber(body, 'top_k', (x) => Number.isSafeInteger(x) && x >= -1, 'an integer >= -1 (-1 or 0: off)');
  const minP = optNumber(body, 'min_p', (x) => x >= 0 && x <= 1, 'a number from 0 to 1');
  const repetitionPenalty = optNumber(body, 'repetition_penalty', (x) => x > 0 && x <= 10, 'a number in (0, 10]');
  const seed = optInt(body, 'seed', 0);
  const stop = parseStop(body.stop);
  const responseFormat = parseResponseFormat(body);
  return {
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    // An explicit temperature means what it says: 0 is greedy, anything else samples.
    ...(temperature !== undefined ? { temperature, doSample: temperature > 0 } : {}),
    ...(topP !== undefined ? { topP } : {}),
    ...(topK !== undefined ? { topK: Math.max(0, topK) } : {}),
    ...(minP !== undefined ? { minP } : {}),
    ...(repetitionPenalty !== undefined ? { repetitionPenalty } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(stop !== undefined ? { stop } : {}),
    ...(responseFormat !== undefined ? { responseFormat } : {}),
  };
}

/** vLLM's `mm_processor_kwargs`: video sampling defaults of the request (`fps`, `max_frames`). */
function videoDefaults(body: Obj): { fps?: number; maxFrames?: number } {
  const raw = body.mm_processor_kwargs;
  if (raw === undefined || raw === null) return {};
  if (!isObj(raw)) want('mm_processor_kwargs', 'an object', raw);
  return videoSampling(raw, 'mm_processor_kwargs');
}

/**
 * Checks a Chat Completions request body (already parsed from JSON) and reads it into a
 * {@link ChatRequest}; throws an {@link OpenAIError} (400) naming the first bad field.
 * @internal
 */
export function parseChatRequest(body: unknown): ChatRequest {
  if (!isObj(body)) want('', 'a JSON object', body);
  const model = body.model;
  if (typeof model !== 'string' || model.length === 0) want('model', 'a non-empty string', model);
  const rawMessages = body.messages;
  if (!Array.isArray(rawMessages)) want('messages', 'an array of messages', rawMessages);
  if (rawMessages.length === 0) throw badRequest('messages', 'at least one message is required');
  if (rawMessages.length > REQUEST_LIMITS.messages) throw badRequest('messages', `at most ${REQUEST_LIMITS.messages} messages`);
  const messages = rawMessages.map(parseMessage);
  refuseUnsupported(body);
  const generate = parseGenerate(body);
  const stream = optBool(body, 'stream') ?? false;
  const so = body.stream_options;
  let includeUsage = false;
  if (so !== undefined && so !== null) {
    if (!stream) throw badRequest('stream_options', 'only allowed when stream is true');
    if (!isObj(so)) want('stream_options', 'an object', so);
    includeUsage = optBool(so, 'include_usage') ?? false;
  }
  const defaults = videoDefaults(body);
  if (defaults.fps !== undefined || defaults.maxFrames !== undefined) {
    for (const m of messages) {
      if (typeof m.content === 'string') continue;
      m.content = m.content.map((p) => (p.type === 'video' ? { ...defaults, ...p } : p));
    }
  }
  const tools = parseTools(body);
  const variables = body.chat_template_kwargs;
  if (variables !== undefined && variables !== null && !isObj(variables)) want('chat_template_kwargs', 'an object', variables);
  return {
    model,
    messages,
    generate: {
      ...generate,
      ...(tools ? { tools } : {}),
      // vLLM's extra: template variables such as {"enable_thinking": false}.
      ...(isObj(variables) ? { templateVariables: { ...variables } } : {}),
    },
    stream,
    includeUsage,
    ...(tools ? { tools } : {}),
  };
}

/**
 * The library messages of a checked request: each image and video URL resolved by `media` (in
 * message order, so the first refused one is reported), tool calls in the shape Qwen's chat
 * templates read. Messages and parts keep their indices, so the library's errors name the same
 * `messages[i].content[j]` as the request.
 * @internal
 */
export async function toLibraryMessages(request: ChatRequest, media: MediaSession): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  for (const m of request.messages) {
    let content: string | ContentPart[];
    if (typeof m.content === 'string') content = m.content;
    else {
      content = [];
      for (const p of m.content) {
        if (p.type === 'text') content.push({ type: 'text', text: p.text });
        else if (p.type === 'image') content.push({ type: 'image', image: await media.resolve(p.url, 'image', p.param) });
        else {
          const video = await media.resolve(p.url, 'video', p.param);
          content.push({
            type: 'video',
            video,
            ...(p.fps !== undefined ? { fps: p.fps } : {}),
            ...(p.maxFrames !== undefined ? { max_frames: p.maxFrames } : {}),
          });
        }
      }
    }
    const msg: ChatMessage = { role: m.role, content };
    if (m.toolCalls) {
      msg.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    }
    if (m.toolCallId !== undefined) msg.tool_call_id = m.toolCallId;
    out.push(msg);
  }
  return out;
}
