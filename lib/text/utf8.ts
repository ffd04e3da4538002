/**
 * UTF-8 helpers for decoding token bytes, whole or incrementally.
 * @internal
 * @module
 */

const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * Bytes -> string, each ill-formed subsequence replaced by U+FFFD using the "maximal subpart" rule of the
 * Unicode standard, which is both what Python's `bytes.decode('utf-8', errors='replace')` and the WHATWG
 * decoder do. `ignoreBOM` keeps a leading U+FEFF (Python keeps it too).
 */
export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * Length of a trailing sequence of `bytes[0..end)` that is an incomplete but so far valid UTF-8 character
 * (0 when the data ends on a character boundary or ends in bytes that can never become valid). Holding
 * exactly these bytes back is safe: a lead byte that can still start a valid character always ends the
 * maximal subpart before it, so decoding the head now and the tail later gives the same text as decoding all.
 */
export function incompleteUtf8Tail(bytes: Uint8Array, end: number): number {
  for (let back = 1; back <= 3 && end - back >= 0; back++) {
    const b = bytes[end - back];
    if (b < 0x80) return 0; // ASCII: boundary
    if (b < 0xc0) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (need === 0 || back >= need) return 0; // invalid lead, or the character is complete
    // The second byte's allowed range depends on the lead (no overlongs, no surrogates, <= U+10FFFF).
    if (back >= 2) {
      const second = bytes[end - back + 1];
      const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
      const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
      if (second < lo || second > hi) return 0;
    }
    return back;
  }
  return 0;
}
