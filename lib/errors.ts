/**
 * Stable error codes. Every error qwenvl throws or rejects with is a {@link QwenVLError}
 * carrying one of these. The last four come only from fetching models from the Hugging Face Hub
 * (`pullModel`, `loadModel('org/name')`, `qwenvl pull`):
 *
 * - `E_NETWORK`: the Hub could not be reached, the connection broke, or it answered something
 *   unexpected (a status or missing header); a partial download is kept and the next pull resumes it.
 * - `E_AUTH`: the repository is gated or private and the token is missing or not allowed (401/403).
 * - `E_NOT_FOUND`: no such repository, revision or file; or offline (`HF_HUB_OFFLINE`) and the cache
 *   lacks what is needed (the message names it).
 * - `E_INTEGRITY`: a downloaded file does not match its size or checksum (sha256 for LFS files,
 *   the git blob id for small ones); nothing is committed to the cache.
 *
 * `E_BUSY`: the model's engine already has `engine.maxQueue` requests waiting (the
 * `engine` option of `loadModel`); the request was not started and may be retried later.
 */
export type ErrorCode =
  | 'E_MODEL_FORMAT'
  | 'E_UNSUPPORTED'
  | 'E_INPUT'
  | 'E_CONTEXT_OVERFLOW'
  | 'E_ABORTED'
  | 'E_DISPOSED'
  | 'E_NATIVE'
  | 'E_NETWORK'
  | 'E_AUTH'
  | 'E_NOT_FOUND'
  | 'E_INTEGRITY'
  | 'E_BUSY';

/** The one error class of the library: `code` says what kind, `message` what and where. */
export class QwenVLError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QwenVLError';
    this.code = code;
  }
}

/** Shorthand for argument validation errors. */
export function inputError(message: string): QwenVLError {
  return new QwenVLError('E_INPUT', message);
}

/** A malformed or inconsistent model file; `file` (and `field`) say where. */
export function formatError(file: string, message: string): QwenVLError {
  return new QwenVLError('E_MODEL_FORMAT', `${file}: ${message}`);
}
