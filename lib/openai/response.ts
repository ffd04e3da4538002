/**
 * The response objects of Chat Completions: `chat.completion` (one answer), `chat.completion.chunk`
 * (one streamed delta) and `usage`, built from the library's {@link ChatResult}.
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ChatResult, FinishReason } from '../model/model.js';

/** A tool call of an answer, in the wire shape (`arguments` a JSON string). @internal */
export interface ToolCallOut {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** Token counts in the wire shape. @internal */
export interface UsageOut {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The wire finish reasons. @internal */
export type FinishReasonOut = 'stop' | 'length' | 'tool_calls';

/** One answer, `object: "chat.completion"`. @internal */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string | null; refusal: null; reasoning_content?: string; tool_calls?: ToolCallOut[] };
    finish_reason: FinishReasonOut;
    logprobs: null;
  }[];
  usage: UsageOut;
}

/** One streamed delta, `object: "chat.completion.chunk"`. @internal */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string; reasoning_content?: string; tool_calls?: (ToolCallOut & { index: number })[] };
    finish_reason: FinishReasonOut | null;
    logprobs: null;
  }[];
  usage?: UsageOut | null;
}

/** A fresh completion id, `chatcmpl-` and 24 random hex digits. @internal */
export function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString('hex')}`;
}

/** A fresh tool call id, `call_` and 24 random hex digits. @internal */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/** Usage in the wire shape. @internal */
export function usageOf(result: Pick<ChatResult, 'usage'>): UsageOut {
  const u = result.usage;
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}

/**
 * The wire finish reason: a reply that called tools is `tool_calls`; an aborted one (only a server
 * shutting down answers those) reads as `length`, since it was cut short.
 * @internal
 */
export function finishReasonOf(reason: FinishReason, calledTools: boolean): FinishReasonOut {
  if (calledTools || reason === 'tool_calls') return 'tool_calls';
  return reason === 'stop' ? 'stop' : 'length';
}

/** Fields every object of one completion shares. @internal */
export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

/** A fresh {@link CompletionMeta} for `model`, stamped now. @internal */
export function completionMeta(model: string): CompletionMeta {
  return { id: completionId(), created: Math.floor(Date.now() / 1000), model };
}

/**
 * The `chat.completion` object of a finished request. `content` defaults to the result's text
 * (tool calls and the thinking block already taken out by the library), `toolCalls` to its calls;
 * content is null when the reply only called tools. The thinking block is `reasoning_content`, as
 * vLLM names it.
 * @internal
 */
export function chatCompletion(
  meta: CompletionMeta,
  result: ChatResult,
  content: string = result.text,
  toolCalls: readonly ToolCallOut[] = result.toolCalls ?? [],
): ChatCompletion {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: toolCalls.length > 0 && content.trim() === '' ? null : content,
          refusal: null,
          ...(result.reasoning !== undefined ? { reasoning_content: result.reasoning } : {}),
          ...(toolCalls.length > 0 ? { tool_calls: [...toolCalls] } : {}),
        },
        finish_reason: finishReasonOf(result.finishReason, toolCalls.length > 0),
        logprobs: null,
      },
    ],
    usage: usageOf(result),
  };
}

/**
 * A `chat.completion.chunk` with one choice: a delta (`role` on the first, `content` or
 * `tool_calls`) and, on the last, its finish reason. `includeUsage` adds `usage: null`, as OpenAI
 * does on every chunk before the usage chunk.
 * @internal
 */
export function chunk(
  meta: CompletionMeta,
  delta: ChatCompletionChunk['choices'][number]['delta'],
  finishReason: FinishReasonOut | null = null,
  includeUsage = false,
): ChatCompletionChunk {
  return {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    ...(includeUsage ? { usage: null } : {}),
  };
}

/** The last chunk of a stream with `include_usage`: no choices, the usage. @internal */
export function usageChunk(meta: CompletionMeta, result: Pick<ChatResult, 'usage'>): ChatCompletionChunk {
  return { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, choices: [], usage: usageOf(result) };
}
