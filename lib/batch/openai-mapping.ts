/**
 * The batch command's use of the OpenAI mapping (lib/openai, shared with the server): a request
 * body is checked by `parseChatRequest`, its image_url / video_url parts resolved by a media
 * resolver that reads local files (paths relative to the requests file's folder), `data:` URLs,
 * and http(s) URLs only when enabled; a result becomes a `chat.completion` object.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import {
  chatCompletion,
  completionMeta,
  createMediaResolver,
  OpenAIError,
  paramOfLibraryMessage,
  parseChatRequest,
  toLibraryMessages,
  type RemoteMediaOptions,
} from '../openai/index.js';
import type { LineError } from './input.js';
import type { BatchRequestMapping } from './run.js';

/** Options of {@link createBatchMapping}. @internal */
export interface BatchMappingOptions {
  /** The `model` of a body that names none, and of every completion that does not. */
  modelName: string;
  /** Folder relative media paths resolve against (the requests file's). */
  baseDir: string;
  /** Fetch http(s) media with these limits; refused when absent. */
  remote?: RemoteMediaOptions;
  /** max_tokens of a body that sets neither max_tokens nor max_completion_tokens. */
  maxTokens?: number;
}

const unset = (v: unknown) => v === undefined || v === null;

/**
 * The error line of a failed request, in the library's codes (OpenAI's 4xx answers are E_INPUT, or
 * E_UNSUPPORTED for what is not supported), naming the request field at fault when known.
 * @internal
 */
export function batchLineError(e: unknown): LineError {
  if (e instanceof QwenVLError) {
    const param = paramOfLibraryMessage(e.message);
    return { code: e.code, message: e.message, ...(param !== null ? { param } : {}) };
  }
  if (e instanceof OpenAIError) {
    const code = e.status >= 500 ? 'E_INTERNAL' : e.code === 'unsupported' ? 'E_UNSUPPORTED' : 'E_INPUT';
    return { code, message: e.message, ...(e.param !== null ? { param: e.param } : {}) };
  }
  return { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** The mapping of a batch run. @internal */
export function createBatchMapping(o: BatchMappingOptions): BatchRequestMapping {
  // A local program's batch: any local file the requests name may be read.
  const resolver = createMediaResolver({ localFiles: 'allow', baseDir: o.baseDir, ...(o.remote ? { remote: o.remote } : {}) });
  return {
    async prepare(raw, signal) {
      const body: Record<string, unknown> = { ...raw };
      if (unset(body.model)) body.model = o.modelName;
      if (o.maxTokens !== undefined && unset(body.max_tokens) && unset(body.max_completion_tokens)) body.max_tokens = o.maxTokens;
      // A batch answers whole completions: `stream` does not apply and is ignored.
      delete body.stream;
      delete body.stream_options;
      const req = parseChatRequest(body);
      const session = resolver.session(signal);
      try {
        const messages = await toLibraryMessages(req, session);
        return {
          messages,
          options: { ...req.generate, media: session.media() },
          // Tool calls come parsed in the result (tools travel in req.generate); a malformed
          // <tool_call> block stays in the content, as the server answers it, so no output is lost.
          complete: (result) =>
            chatCompletion(completionMeta(req.model), result, result.text + (result.toolCallErrors ?? []).map((e) => e.raw).join('')),
          close: () => session.close(),
        };
      } catch (e) {
        await session.close();
        throw e;
      }
    },
    errorOf: batchLineError,
  };
}
