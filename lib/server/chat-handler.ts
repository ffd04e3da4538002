/**
 * `POST /v1/chat/completions`: one request from its body to its last byte. The body is checked
 * first (400 before any queueing), then the request waits for a running slot, its media are
 * resolved, and the model streams the reply: as server-sent events when `stream` is set, else
 * gathered into one `chat.completion`. The model's own continuous batching runs the requests that
 * hold slots together.
 *
 * A client that disconnects aborts its generation at once. A shutdown first lets running requests
 * finish, then aborts the rest: a stream then ends with an error event and `[DONE]`, a plain request
 * with a 503 — never a reply cut without saying so.
 * @internal
 * @module
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ChatStreamEvent } from '../generate/reply.js';
import type { ChatResult, Model } from '../model/model.js';
import { OpenAIError, toOpenAIError } from '../openai/errors.js';
import type { MediaResolver } from '../openai/media.js';
import { parseChatRequest, toLibraryMessages, type ChatRequest } from '../openai/request.js';
import {
  chatCompletion,
  chunk,
  completionMeta,
  finishReasonOf,
  usageChunk,
  type ChatCompletionChunk,
  type CompletionMeta,
} from '../openai/response.js';
import { shuttingDown, type Admission } from './admission.js';
import type { ServerMetrics } from './server-metrics.js';
import { SseWriter } from './sse.js';

/** A request being answered; `shutdown()` aborts it as the server stops. @internal */
export interface InFlight {
  shutdown(): void;
}

/** What the handler works with. @internal */
export interface ChatContext {
  model: Model;
  /** The model's name in requests and `/v1/models`. */
  modelId: string;
  admission: Admission;
  resolver: MediaResolver;
  metrics: ServerMetrics;
  /** Milliseconds a streaming client may leave the socket full before it is cut off. */
  stallMs: number;
  /** Requests being answered (shutdown drains them). */
  inflight: Set<InFlight>;
}

/** Why a request ended before its reply did. */
type EndedEarly = 'client' | 'shutdown' | null;

/** Answers one chat completion request. @internal */
export async function handleChat(ctx: ChatContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const arrived = performance.now();
  const req = parseChatRequest(request.body);
  if (req.model !== ctx.modelId) {
    throw new OpenAIError(404, `model '${req.model}' does not exist; this server serves '${ctx.modelId}'`, 'invalid_request_error', 'model', 'model_not_found');
  }
  const abort = new AbortController();
  let ended: EndedEarly = null;
  const onClose = () => {
    if (reply.raw.writableFinished || abort.signal.aborted) return;
    ended ??= 'client';
    abort.abort(new OpenAIError(499, 'the client went away', 'invalid_request_error', null, 'cancelled'));
  };
  reply.raw.on('close', onClose);
  const entry: InFlight = {
    shutdown() {
      if (abort.signal.aborted) return;
      ended ??= 'shutdown';
      abort.abort(shuttingDown());
    },
  };
  ctx.inflight.add(entry);
  const slot = await ctx.admission.acquire(abort.signal).catch((e: unknown) => {
    ctx.inflight.delete(entry);
    throw e;
  });
  const media = ctx.resolver.session(abort.signal);
  // Nothing to answer: the client is gone (499 is what the metrics count; nothing is sent).
  const hijack = () => {
    reply.raw.statusCode = 499;
    reply.hijack();
  };
  try {
    const messages = await toLibraryMessages(req, media);
    const options = {
      ...req.generate,
      media: media.media(),
      signal: abort.signal,
      // Text from clients never becomes control tokens.
      specialTokensInUserText: false,
    };
    const events = ctx.model.streamEvents(messages, options);
    const meta = completionMeta(ctx.modelId);
    let firstAt = 0;
    const first = await events.next();
    if (!first.done) {
      firstAt = performance.now();
      ctx.metrics.timeToFirstToken.observe((firstAt - arrived) / 1000);
    }
    if (req.stream) {
      await streamReply(ctx, reply, req, events, first, firstAt, meta, () => ended);
    } else {
      // The answer's content in reply order: text, and malformed tool-call blocks as they were written.
      let content = '';
      let step = first;
      for (; !step.done; step = await events.next()) content += contentOf(step.value);
      const result = step.value;
      settle(ctx, result, firstAt, ended);
      if (ended === 'client') return hijack();
      // A reply that was complete before the shutdown reached it still goes out whole.
      if (ended === 'shutdown' && result.finishReason === 'abort') throw shuttingDown();
      await reply.code(200).send(chatCompletion(meta, result, content));
    }
  } catch (e) {
    // A request aborted before its first token surfaces its abort reason.
    if (ended === 'client') return hijack();
    throw ended === 'shutdown' ? shuttingDown() : e;
  } finally {
    ctx.metrics.duration.observe((performance.now() - arrived) / 1000);
    slot.release();
    ctx.inflight.delete(entry);
    reply.raw.off('close', onClose);
    await media.close();
  }
}

/**
 * The content an event adds: answer text, or a malformed `<tool_call>` block given back as the text
 * the model wrote (OpenAI's shape has no place for it, and dropping it would lose output).
 */
function contentOf(event: ChatStreamEvent): string {
  if (event.type === 'text') return event.text;
  if (event.type === 'tool_call_error') return `<tool_call>${event.error.raw}</tool_call>`;
  return '';
}

/** Counts a finished generation in the metrics. */
function settle(ctx: ChatContext, result: ChatResult, firstAt: number, ended: EndedEarly): void {
  ctx.metrics.promptTokens.inc({}, result.usage.promptTokens);
  ctx.metrics.generationTokens.inc({}, result.usage.completionTokens);
  if (firstAt > 0) ctx.metrics.throughput.record(firstAt, performance.now(), result.usage.completionTokens);
  if (ended && result.finishReason === 'abort') ctx.metrics.aborted.inc({ reason: ended });
}

async function streamReply(
  ctx: ChatContext,
  reply: FastifyReply,
  req: ChatRequest,
  events: AsyncGenerator<ChatStreamEvent, ChatResult, undefined>,
  first: IteratorResult<ChatStreamEvent, ChatResult>,
  firstAt: number,
  meta: CompletionMeta,
  ended: () => EndedEarly,
): Promise<void> {
  // Errors up to here (bad media, context overflow) were plain HTTP errors; from now on the
  // status is sent, and an error is an event.
  reply.hijack();
  const sse = new SseWriter(reply.raw, ctx.stallMs);
  sse.start();
  const usage = req.includeUsage;
  let step = first;
  try {
    await sse.send(chunk(meta, { role: 'assistant', content: '' }, null, usage));
    for (; !step.done; step = await events.next()) {
      const delta = deltaOf(step.value);
      if (delta && !(await sse.send(chunk(meta, delta, null, usage)))) break;
    }
  } catch (e) {
    // The model failed mid-stream: say so, then end.
    ctx.metrics.aborted.inc({ reason: 'error' });
    await sse.send(toOpenAIError(e).body());
    await sse.send('[DONE]');
    sse.end();
    return;
  }
  if (!step.done) {
    // The client is gone (or was cut off for stalling): its close aborted the generation, which
    // ends within a step; what is left of the reply is dropped, the result still counted.
    try {
      while (!step.done) step = await events.next();
    } catch {
      return;
    }
    settle(ctx, step.value, firstAt, ended() ?? 'client');
    return;
  }
  const result = step.value;
  settle(ctx, result, firstAt, ended());
  const why = ended();
  if (why === 'client') return;
  if (why === 'shutdown' && result.finishReason === 'abort') {
    await sse.send(shuttingDown().body());
    await sse.send('[DONE]');
    sse.end();
    return;
  }
  await sse.send(chunk(meta, {}, finishReasonOf(result.finishReason, (result.toolCalls ?? []).length > 0), usage));
  if (usage) await sse.send(usageChunk(meta, result));
  await sse.send('[DONE]');
  sse.end();
}

/** The chunk delta of one event of the reply (undefined: nothing to send). */
function deltaOf(event: ChatStreamEvent): ChatCompletionChunk['choices'][number]['delta'] | undefined {
  switch (event.type) {
    case 'text':
    case 'tool_call_error': {
      const content = contentOf(event);
      return content ? { content } : undefined;
    }
    case 'reasoning':
      return event.text ? { reasoning_content: event.text } : undefined;
    case 'tool_call':
      return { tool_calls: [{ index: event.index, ...event.toolCall }] };
  }
}
