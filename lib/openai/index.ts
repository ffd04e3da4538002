/**
 * OpenAI Chat Completions ⇄ qwenvl: the wire format the server (`qwenvl serve`) and the batch CLI
 * speak, kept apart from any HTTP code so both share it.
 *
 * A request goes through three steps:
 *
 * ```ts
 * const req = parseChatRequest(body);              // checks every field: OpenAIError (400) naming it
 * const session = resolver.session(signal);        // resolver = createMediaResolver({ localFiles, remote, baseDir })
 * try {
 *   const messages = await toLibraryMessages(req, session); // image_url / video_url -> library sources
 *   const result = await model.chat(messages, { ...req.generate, media: session.media(), signal });
 *   const body = chatCompletion(completionMeta(req.model), result);
 * } finally {
 *   await session.close();                         // deletes the request's temporary files
 * }
 * ```
 *
 * - {@link parseChatRequest} → {@link ChatRequest}: `messages` (roles system/developer, user, assistant
 *   with `tool_calls`, tool; content a string or `text` / `image_url` / `video_url` parts), `generate`
 *   (the library's GenerateOptions: `max_completion_tokens`/`max_tokens`, `temperature`, `top_p`,
 *   `top_k`, `min_p`, `repetition_penalty`, `seed`, `stop`, `tools`, `chat_template_kwargs` as
 *   template variables), `stream`, `includeUsage`.
 *   Unknown fields are ignored; known ones the library cannot honour are refused (see request.ts).
 * - {@link createMediaResolver}: which URLs a request may name (data: always; http(s) when enabled,
 *   with size and time limits; local paths only under named folders, or relative to a base folder).
 * - Responses: {@link chatCompletion}, {@link chunk}, {@link usageChunk}, {@link completionMeta}.
 * - Errors: {@link OpenAIError} (`status`, `body()` in OpenAI's shape); {@link toOpenAIError} maps any
 *   error (the library's QwenVLError codes included) to one.
 * - Tools: `tools` (unless `tool_choice` is `"none"`) go to the library in `generate.tools`; the
 *   library parses the reply's Hermes `<tool_call>` blocks into `ChatResult.toolCalls` (and
 *   `tool_call` events of `model.streamEvents`), which {@link chatCompletion} puts in the message.
 * @internal
 * @module
 */
export { OpenAIError, badRequest, toOpenAIError, paramOfLibraryMessage, type OpenAIErrorBody } from './errors.js';
export {
  createMediaResolver,
  type MediaKind,
  type MediaResolver,
  type MediaResolverOptions,
  type MediaSession,
  type RemoteMediaOptions,
} from './media.js';
export {
  parseChatRequest,
  toLibraryMessages,
  REQUEST_LIMITS,
  type ChatRequest,
  type RequestMessage,
  type RequestPart,
  type RequestTool,
  type RequestToolCall,
} from './request.js';
export {
  chatCompletion,
  chunk,
  completionId,
  completionMeta,
  finishReasonOf,
  toolCallId,
  usageChunk,
  usageOf,
  type ChatCompletion,
  type ChatCompletionChunk,
  type CompletionMeta,
  type FinishReasonOut,
  type ToolCallOut,
  type UsageOut,
} from './response.js';
