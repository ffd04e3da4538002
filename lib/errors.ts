/**
 * Stable error codes. Every error qwenvl throws or rejects with is a {@link QwenVLError}
 * carrying one of these.
 */
export type ErrorCode =
  | 'E_MODEL_FORMAT'
  | 'E_UNSUPPORTED'
  | 'E_INPUT'
  | 'E_CONTEXT_OVERFLOW'
  | 'E_ABORTED'
  | 'E_DISPOSED'
  | 'E_NATIVE';

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
