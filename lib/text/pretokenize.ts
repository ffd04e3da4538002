/**
 * The Qwen2 pre-tokenizer split, run over long texts a window at a time so that no single regex
 * search grows with the text (a 4-million-character run of CJK letters takes a quarter of a second in
 * one `exec`). The pieces are exactly those of running the regex over the whole text:
 *
 * - A window ends at a *safe cut*: a position where every match of the whole-text run ends, whatever
 *   follows. These are: after a digit (`\p{N}` is always a piece of its own), after a letter followed by a
 *   non-letter (the letter run ends there, and no alternative reaches back over a letter), and after a
 *   CR or LF followed by a non-space (a whitespace run ends there with its last line break, and the
 *   optional one-character prefixes of the letter and punctuation alternatives exclude CR and LF).
 * - Where a whole window holds no safe cut, the text is one long run; the window's first match is kept
 *   when it ends inside the window, and a match running to the window's end is a letter or punctuation
 *   run whose alternative was chosen by its first characters, so it is extended through the rest of
 *   its run a chunk at a time. Whitespace matches depend on how the whole run ends and are matched
 *   directly (whitespace classes are fast).
 * @internal
 * @module
 */

/** Unicode White_Space, i.e. `\s` of Python's `regex` module and of Oniguruma. @internal */
export const WS = '\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';

/** The Qwen2 split pattern in JavaScript syntax (no inline flags in Node 20; explicit White_Space class). @internal */
export function qwen2SplitSource(): string {
  return (
    "'(?:[sS\\u017F]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])" +
    '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+' +
    '|\\p{N}' +
    `| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*` +
    `|[${WS}]*[\\r\\n]+` +
    `|[${WS}]+(?![^${WS}])` +
    `|[${WS}]+`
  );
}

/** Characters per window; the tests use tiny windows to exercise every boundary. */
export const WINDOW = 1 << 15;

/** A pause point (the consumer yields); any other value is the end of the next piece. */
export const PAUSE = -1;

const SPLIT = new RegExp(qwen2SplitSource(), 'gu');
const SPLIT_AT = new RegExp(qwen2SplitSource(), 'yu');
const CUT = new RegExp(`\\p{N}|\\p{L}(?=\\P{L})|[\\r\\n](?=[^${WS}])`, 'gu');
const LETTERS = /\p{L}*/uy;
const PUNCT = new RegExp(`[^${WS}\\p{L}\\p{N}]*`, 'uy');
const BREAKS = /[\r\n]*/y;
const ONLY_WS = new RegExp(`^[${WS}]+$`);
const ENDS_LETTER = /\p{L}$/u;
const ENDS_PUNCT = new RegExp(`[^${WS}\\p{L}\\p{N}]$`, 'u');
const ENDS_BREAK = /[\r\n]$/;

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;

/** `end`, moved one on when it would split a surrogate pair. */
function whole(text: string, end: number): number {
  return end < text.length && end > 0 && isHigh(text.charCodeAt(end - 1)) ? end + 1 : end;
}

/** End of the run of `re` (a sticky `X*` class) from `at`, scanned a window at a time. */
function* runEnd(text: string, at: number, re: RegExp, window: number): Generator<number, number> {
  for (;;) {
    const end = whole(text, Math.min(text.length, at + window));
    const chunk = text.slice(at, end);
    re.lastIndex = 0;
    const len = re.exec(chunk)![0].length;
    if (len < chunk.length || end === text.length) return at + len;
    at = end;
    yield PAUSE;
  }
}

/** Yields the end of each piece of `text` (in order, covering it), and {@link PAUSE} between bounded steps. */
export function* pieceEnds(text: string, window = WINDOW): Generator<number, void> {
  const n = text.length;
  let pos = 0;
  let noCutBefore = 0; // no safe cut c with pos < c <= noCutBefore
  while (pos < n) {
    const winEnd = whole(text, Math.min(n, pos + window));
    if (winEnd === n) {
      yield* matchesIn(text, pos, n);
      return;
    }
    // The last safe cut in (pos, winEnd]; the search sees two characters beyond for its lookahead.
    const from = Math.max(pos, noCutBefore - 2);
    const sub = text.slice(from, Math.min(n, winEnd + 2));
    let cut = -1;
    CUT.lastIndex = 0;
    for (let m = CUT.exec(sub); m !== null; m = CUT.exec(sub)) {
      const c = from + m.index + m[0].length;
      if (c > winEnd) break;
      if (c > pos) cut = c;
    }
    if (cut > 0) {
      yield* matchesIn(text, pos, cut);
      pos = cut;
      yield PAUSE;
      continue;
    }
    noCutBefore = winEnd;
    pos = yield* longPiece(text, pos, winEnd, window);
    yield pos;
    yield PAUSE;
  }
}

/** Every piece of text[from, to) where `to` is a safe cut (or the end). */
function* matchesIn(text: string, from: number, to: number): Generator<number, void> {
  const sub = text.slice(from, to);
  SPLIT.lastIndex = 0;
  let last = 0;
  let count = 0;
  for (let m = SPLIT.exec(sub); m !== null; m = SPLIT.exec(sub)) {
    if (m.index > last) yield from + m.index; // a gap: never, while the pattern covers every character
    last = m.index + m[0].length;
    yield from + last;
    if (++count % 256 === 0) yield PAUSE;
  }
  if (last < sub.length) yield to;
}

/** The end of the piece starting at `pos` in a stretch without safe cuts up to `winEnd`. */
function* longPiece(text: string, pos: number, winEnd: number, window: number): Generator<number, number> {
  const sub = text.slice(pos, winEnd);
  SPLIT.lastIndex = 0;
  const m = SPLIT.exec(sub);
  if (m !== null && m.index === 0 && !ONLY_WS.test(m[0])) {
    const end = pos + m[0].length;
    if (end < winEnd) return end;
    if (ENDS_LETTER.test(m[0])) return yield* runEnd(text, end, LETTERS, window);
    if (ENDS_PUNCT.test(m[0])) return yield* runEnd(text, yield* runEnd(text, end, PUNCT, window), BREAKS, window);
    if (ENDS_BREAK.test(m[0])) return yield* runEnd(text, end, BREAKS, window);
  }
  // Whitespace (or anything unexpected): match in the whole text.
  SPLIT_AT.lastIndex = pos;
  const w = SPLIT_AT.exec(text);
  return w === null ? n1(text, pos) : pos + w[0].length;
}

/** One code point on from `pos`. */
function n1(text: string, pos: number): number {
  return whole(text, pos + 1);
}
