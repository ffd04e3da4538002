/**
 * Errors in the OpenAI wire shape: `{"error": {"message", "type", "param", "code"}}` with the HTTP
 * status a client expects, and the mapping of the library's {@link QwenVLError} codes onto them.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';

/** The body an OpenAI-compatible endpoint answers an error with. @internal */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * An error a request gets back: `status` is the HTTP status, `param` the request field at fault
 * (`messages[1].content[0].image_url.url`), `code` a short machine-readable reason. @internal
 */
export class OpenAIError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'OpenAIError';
  }

  /** The wire body. */
  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 on one request field. @internal */
export function badRequest(param: string | null, message: string, code: string | null = null): OpenAIError {
  return new OpenAIError(400, param ? `${param}: ${message}` : message, 'invalid_request_error', param, code);
}

/**
 * The OpenAI request path of a library message location: the library names message parts as
 * `conversation 0, message M, part P` (one conversation per request here), which is
 * `messages[M].content[P]` of the request, since requests are converted message for message and part
 * for part.
 */
export function paramOfLibraryMessage(message: string): string | null {
  const m = /conversation \d+, message (\d+)(?:, part (\d+))?/.exec(message);
  if (!m) return null;
  return m[2] === undefined ? `messages[${m[1]}]` : `messages[${m[1]}].content[${m[2]}]`;
}

/**
 * Any error of a request turned into what the client gets: an {@link OpenAIError} passes
 * through; a {@link QwenVLError} maps by code (bad input 400, a disposed model 503, the model's
 * own failures 500); anything else is a 500 that does not echo internals.
 * @internal
 */
export function toOpenAIError(err: unknown): OpenAIError {
  if (err instanceof OpenAIError) return err;
  if (err instanceof QwenVLError) {
    const param = paramOfLibraryMessage(err.message);
    // The model's own queue is full (an engine with a request queue): retry later, as for ours.
    if ((err.code as string) === 'E_BUSY') return new OpenAIError(429, err.message, 'rate_limit_error', null, 'queue_full');
    switch (err.code) {
      case 'E_INPUT':
        return new OpenAIError(400, err.message, 'invalid_request_error', param, 'invalid_input');
      case 'E_CONTEXT_OVERFLOW':
        return new OpenAIError(400, err.message, 'invalid_request_error', param ?? 'messages', 'context_length_exceeded');
      case 'E_UNSUPPORTED':
        return new OpenAIError(400, err.message, 'invalid_request_error', param, 'unsupported');
      case 'E_ABORTED':
        return new OpenAIError(499, 'the request was cancelled', 'invalid_request_error', null, 'cancelled');
      case 'E_DISPOSED':
        return new OpenAIError(503, 'the model is shutting down', 'server_error', null, 'shutting_down');
      case 'E_MODEL_FORMAT':
      case 'E_NATIVE':
      case 'E_NETWORK':
      case 'E_AUTH':
      case 'E_NOT_FOUND':
      case 'E_INTEGRITY':
        return new OpenAIError(500, `the model failed: ${err.code}: ${err.message}`, 'server_error', null, 'model_error');
    }
  }
  return new OpenAIError(500, 'internal server error', 'server_error', null, 'internal_error');
}
