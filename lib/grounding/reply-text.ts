/**
 * The reply as grounding reads it: `ChatResult.text` with the special tokens put back.
 *
 * chat() decodes with `skipSpecialTokens` (as transformers' examples do), which removes Qwen2-VL's
 * `<|object_ref_start|>` / `<|box_start|>` markers from the text. Rather than change what `text`
 * is, grounding rebuilds the text from the generated ids keeping those tokens, cut exactly
 * where `text` ends (a stop string may end the text inside a token's characters).
 * @internal
 * @module
 */
import type { QwenTokenizer } from '../text/tokenizer.js';

/**
 * `text` (a prefix of the special-token-free decode of `tokens`) with the special tokens of
 * `tokens` in their places, including those right after its last character.
 */
export function textWithSpecialTokens(tokenizer: QwenTokenizer, tokens: readonly number[], text: string): string {
  const decoder = tokenizer.createStreamDecoder({ skipSpecialTokens: true });
  const parts: string[] = [];
  let done = 0;
  const take = (chunk: string): boolean => {
    if (chunk.length === 0) return true;
    if (done >= text.length) return false;
    const n = Math.min(chunk.length, text.length - done);
    // Not the decode `text` came from: keep the plain text (grounding then sees what the caller sees).
    if (!text.startsWith(chunk.slice(0, n), done)) throw new Error('mismatch');
    parts.push(chunk.slice(0, n));
    done += n;
    return n === chunk.length;
  };
  try {
    for (const id of tokens) {
      if (tokenizer.isSpecial(id)) {
        parts.push(tokenizer.idToToken(id) ?? '');
        continue;
      }
      if (!take(decoder.push(id))) return parts.join('');
    }
    take(decoder.flush());
  } catch {
    return text;
  }
  return parts.join('');
}
