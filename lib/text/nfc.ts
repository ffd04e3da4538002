/**
 * NFC normalization of long texts in slices, and the one limit it needs.
 *
 * A slice boundary is placed only before a character that no normalization can join to what precedes
 * it: a starter (canonical combining class 0) whose decomposition starts with a character that is never
 * the second part of a canonical composition. Every character but the combining marks, the conjoining
 * Hangul vowel and final jamo and two Kirat Rai vowel signs is such a character (the tokenizer tests check
 * this against the engine's own Unicode data), so NFC(a + b) = NFC(a) + NFC(b) at every boundary.
 *
 * Canonical reordering takes time quadratic in the length of a run of combining characters (100 000
 * alternating marks take ten seconds in V8's normalizer), so a run longer than {@link MAX_COMBINING_RUN}
 * is refused; real text stacks a few marks, "Zalgo" text a few dozen.
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import type { Steps } from './slices.js';

/** Characters that may join with what precedes them under NFC (never a slice boundary before them). @internal */
export const NON_STARTER = /[\p{M}\u1160-\u11ff\u{16d67}\u{16d68}]/u;

/** Longest accepted run of {@link NON_STARTER} characters. */
export const MAX_COMBINING_RUN = 1024;

const LONG_RUN = new RegExp(`${NON_STARTER.source}{${MAX_COMBINING_RUN + 1}}`, 'u');

/** Characters per slice. */
export const NFC_SLICE = 1 << 14;

/** Throws E_INPUT when `text` holds a run of combining characters too long to normalize in bounded time. */
export function checkCombiningRuns(text: string, where = 'text'): void {
  const m = LONG_RUN.exec(text);
  if (m !== null) {
    throw inputError(
      `${where}: more than ${MAX_COMBINING_RUN} combining characters in a row (at character ${m.index}); ` +
        'such text cannot be normalized in bounded time',
    );
  }
}

/** One slice of the input and where its normalized text starts. */
export interface NfcSlice {
  /** Start in the input. */
  from: number;
  /** End in the input. */
  to: number;
  /** Start of its normalized text in the output. */
  out: number;
  /** Whether normalization left the slice unchanged. */
  same: boolean;
}

/** The normalized text and the slices it was built from (to map positions of the input). */
export interface Normalized {
  text: string;
  slices: NfcSlice[];
}

const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Whether a slice may start at `pos`. */
function safeStart(text: string, pos: number): boolean {
  return !isLow(text.charCodeAt(pos)) && !NON_STARTER.test(String.fromCodePoint(text.codePointAt(pos)!));
}

/** NFC of `text`, a slice at a time; equal to `text.normalize('NFC')` (runs over the limit throw E_INPUT). */
export function* normalizeNfc(text: string, where = 'text', slice = NFC_SLICE): Steps<Normalized> {
  const parts: string[] = [];
  const slices: NfcSlice[] = [];
  let out = 0;
  let from = 0;
  while (from < text.length) {
    let to = Math.min(text.length, from + slice);
    if (to < text.length) {
      let c = to;
      while (c > from && !safeStart(text, c)) c--;
      if (c === from) {
        // The slice lies inside one run of combining characters: end it with the run (a run longer than
        // the limit is refused by the check below).
        c = to;
        while (c < text.length && c - from <= slice + MAX_COMBINING_RUN + 2 && !safeStart(text, c)) c++;
      }
      to = c;
    }
    const raw = text.slice(from, to);
    checkCombiningRuns(raw, where);
    const norm = raw.normalize('NFC');
    const same = norm === raw;
    parts.push(norm);
    slices.push({ from, to, out, same });
    out += norm.length;
    from = to;
    yield;
  }
  return { text: parts.length === 1 ? parts[0] : parts.join(''), slices };
}

/** The whole text as one slice (the synchronous path). */
export function normalizeWhole(text: string, where = 'text'): Normalized {
  checkCombiningRuns(text, where);
  const norm = text.normalize('NFC');
  return { text: norm, slices: [{ from: 0, to: text.length, out: 0, same: norm === text }] };
}

/** The input without normalization (a tokenizer without a normalizer). */
export function identity(text: string): Normalized {
  return { text, slices: [{ from: 0, to: text.length, out: 0, same: true }] };
}

/**
 * Position in the normalized text of input position `pos`: exact at slice boundaries and inside slices
 * that normalization left unchanged; elsewhere the length of the normalized prefix of its slice.
 */
export function mapPosition(input: string, n: Normalized, pos: number): number {
  let lo = 0;
  let hi = n.slices.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (n.slices[mid].from <= pos) lo = mid;
    else hi = mid - 1;
  }
  const s = n.slices[lo];
  if (s === undefined || pos >= s.to) return n.text.length;
  return s.out + (s.same ? pos - s.from : input.slice(s.from, pos).normalize('NFC').length);
}
