/**
 * Context-length checks made before a prompt is tokenized: a request whose text cannot fit the
 * model's context is refused with E_CONTEXT_OVERFLOW from its length alone (a token covers at most
 * the tokenizer's longest token in bytes), whatever its size, and before any memory estimate.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { ChatMessage } from '../text/chat-template.js';
import type { QwenTokenizer } from '../text/tokenizer.js';

/** Characters of text in a conversation: string contents and text parts, every role. */
function textLength(messages: readonly ChatMessage[]): number {
  let n = 0;
  for (const m of messages) {
    if (typeof m.content === 'string') n += m.content.length;
    else if (Array.isArray(m.content)) for (const p of m.content) if (p && typeof p.text === 'string') n += p.text.length;
  }
  return n;
}

/** E_CONTEXT_OVERFLOW: the prompt of a row needs more tokens than the context holds. */
export function contextOverflow(tokens: string, contextLength: number, row?: number): QwenVLError {
  return new QwenVLError(
    'E_CONTEXT_OVERFLOW',
    `${row !== undefined && row > 0 ? `conversation ${row}: ` : ''}the prompt has ${tokens} tokens but the model's context is ` +
      `${contextLength} (lower the image resolution or shorten the prompt)`,
  );
}

/**
 * Refuses a conversation whose text alone is too long for the context (NFC may shorten a text up to
 * four times, so the bound allows for it).
 */
export function checkTextLength(messages: readonly ChatMessage[], tokenizer: QwenTokenizer, contextLength: number, row: number): void {
  const chars = textLength(messages);
  if (chars > 4 * contextLength * tokenizer.maxTokenBytes) {
    throw contextOverflow(`more than ${contextLength}`, contextLength, row);
  }
}

/** The tokenizer's overflow error restated for the model's context. */
export function overflowInContext(row: number, contextLength: number, cause: QwenVLError): QwenVLError {
  const e = contextOverflow(`more than ${contextLength}`, contextLength, row);
  return new QwenVLError(e.code, e.message, { cause });
}

/** Occurrences of `needle` in `text` outside the spans (sorted, disjoint). */
export function countOutside(text: string, spans: readonly [number, number][], needle: string): number {
  let n = 0;
  let at = 0;
  for (const [a, b] of [...spans, [text.length, text.length] as [number, number]]) {
    const part = text.slice(at, a);
    for (let i = part.indexOf(needle); i !== -1; i = part.indexOf(needle, i + needle.length)) n++;
    at = b;
  }
  return n;
}
