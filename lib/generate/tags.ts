/**
 * Finding markup tags (`<think>`, `<tool_call>`, ...) in text that arrives in pieces: a tag may be split
 * across decoded tokens, so the end of a piece that could still become a tag is held back.
 * @internal
 * @module
 */

/** Length of the longest end of `text` that is a proper prefix of `tag` (0 when none): what to hold back. */
export function partialTagLength(text: string, tag: string): number {
  for (let k = Math.min(tag.length - 1, text.length); k > 0; k--) {
    if (text.endsWith(tag.slice(0, k))) return k;
  }
  return 0;
}

/** Length of the run of whitespace that ends `text`. */
export function trailingSpaceLength(text: string): number {
  return text.length - text.trimEnd().length;
}
