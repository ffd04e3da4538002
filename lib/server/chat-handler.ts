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
import type { ChatResult, Model } from '../model/model.js';
import { OpenAIError, toOpenAIError } from '../openai/errors.js';
import type { MediaResolver } from '../openai/media.js';
import { parseChatRequest, toLibraryMessages, type ChatRequest } from '../openai/request.js';
import { chatCompletion, chunk, completionMeta, usageChunk, type ToolCallOut } from '../openai/response.js';
import { ToolCallStream, type ParsedToolCalls } from '../openai/tool-stream.js';
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
  /** Reads Hermes `<tool_call>` blocks of a reply; without it tool calls stay in the text. */
  parseToolCalls?: (text: string) => ParsedToolCalls;
  /** Extra library options of every request (e.g. tools support), given the checked request. */
  libraryOptions?: (request: ChatRequest) => Record<string, unknown>;
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
      ...(ctx.libraryOptions?.(req) ?? {}),
      media: media.media(),
      signal: abort.signal,
      // Text from clients never becomes control tokens.
      specialTokensInUserText: false,
    };
    const stream = ctx.model.stream(messages, options);
    const meta = completionMeta(ctx.modelId);
    const tools = new ToolCallStream(req.tools ? ctx.parseToolCalls : undefined);
    let firstAt = 0;
    const first = await stream.next();
    if (!first.done) {
      firstAt = performance.now();
      ctx.metrics.timeToFirstToken.observe((firstAt - arrived) / 1000);
    }
    if (req.stream) {
      await streamReply(ctx, reply, req, stream, first, firstAt, tools, meta, () => ended);
    } else {
      let text = '';
      let step = first;
      for (; !step.done; step = await stream.next()) text += tools.push(step.value);
      const result = step.value;
      settle(ctx, result, firstAt, ended);
      if (ended === 'client') return hijack();
      if (ended === 'shutdown') throw shuttingDown();
      const end = tools.finish();
      await reply.code(200).send(chatCompletion(meta, result, text + end.content, end.toolCalls));
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

/** Counts a finished generation in the metrics. */
function settle(ctx: ChatContext, result: ChatResult, firstAt: number, ended: EndedEarly): void {
  ctx.metrics.promptTokens.inc({}, result.usage.promptTokens);
  ctx.metrics.generationTokens.inc({}, result.usage.completionTokens);
  if (firstAt > 0) ctx.metrics.throughput.record(firstAt, performance.now(), result.usage.completionTokens);
  if (ended) ctx.metrics.aborted.inc({ reason: ended });
}

async function streamReply(
  ctx: ChatContext,
  reply: FastifyReply,
  req: ChatRequest,
  stream: AsyncGenerator<string, ChatResult, undefined>,
  first: IteratorResult<string, ChatResult>,
  firstAt: number,
  tools: ToolCallStream,
  meta: ReturnType<typeof completionMeta>,
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
    for (; !step.done; step = await stream.next()) {
      const text = tools.push(step.value);
      if (text && !(await sse.send(chunk(meta, { content: text }, null, usage)))) break;
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
    // ends within a step; what is left of the text is dropped, the result still counted.
    try {
      while (!step.done) step = await stream.next();
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
  if (why === 'shutdown') {
    await sse.send(shuttingDown().body());
    await sse.send('[DONE]');
    sse.end();
    return;
  }
  const end = tools.finish();
  if (end.content) await sse.send(chunk(meta, { content: end.content }, null, usage));
  if (end.toolCalls.length > 0) {
    const calls = end.toolCalls.map((c: ToolCallOut, index: number) => ({ index, ...c }));
    await sse.send(chunk(meta, { tool_calls: calls }, null, usage));
  }
  await sse.send(chunk(meta, {}, end.toolCalls.length > 0 ? 'tool_calls' : result.finishReason === 'stop' ? 'stop' : 'length', usage));
  if (usage) await sse.send(usageChunk(meta, result));
  await sse.send('[DONE]');
  sse.end();
}
