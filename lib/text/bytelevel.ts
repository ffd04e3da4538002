/**
 * Byte-level alphabet of GPT-2 style BPE (what Qwen's tokenizer uses): every byte 0..255 is shown as one
 * printable Unicode character, so a vocabulary entry is a string over 256 symbols.
 * @internal
 * @module
 */

/** byte -> the character that stands for it in vocabulary strings. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** char code -> byte, or -1 for characters outside the byte-level alphabet. */
export const CHAR_TO_BYTE: Int16Array = buildCharToByte();

function buildByteToChar(): string[] {
  // Printable Latin-1 bytes stand for themselves; the rest (controls, space, 0x7F-0xA0, 0xAD) are moved
  // to U+0100 onwards in byte order. This is the fixed convention of byte-level BPE vocabularies.
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let next = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep(b) ? b : 0x100 + next++);
  return out;
}

function buildCharToByte(): Int16Array {
  const table = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((ch, b) => {
    table[ch.charCodeAt(0)] = b;
  });
  return table;
}

/** Bytes of a vocabulary string, or undefined when it holds a character outside the byte alphabet. */
export function vocabStringToBytes(token: string): Uint8Array | undefined {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return undefined;
    out[i] = b;
  }
  return out;
}
