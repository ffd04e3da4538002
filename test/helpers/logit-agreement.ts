/**
 * Comparing a model's logits with a reference's over a teacher-forced run: `extend` appends a
 * continuation (the reference's own greedy tokens) to a prepared prompt so that one prefill gives
 * both models' logits at every position, and `agreement` / `maxRelDiff` measure them per position.
 */
import type { PreparedInputs } from '../../lib/model/inputs.js';

/** The prepared prompt with `tokens` appended (text positions continue from the prompt's). */
export function extend(p: PreparedInputs, tokens: number[]): PreparedInputs {
  const S = p.seqLength, T = S + tokens.length;
  const ids = new Int32Array(T);
  ids.set(p.inputIds);
  ids.set(tokens, S);
  const mask = new Int32Array(T).fill(1);
  mask.set(p.attentionMask);
  const pos = new Int32Array(3 * T);
  for (let a = 0; a < 3; a++) {
    pos.set(p.positionIds.subarray(a * S, (a + 1) * S), a * T);
    for (let i = 0; i < tokens.length; i++) pos[a * T + S + i] = S + i + p.ropeDeltas[0];
  }
  return { ...p, seqLength: T, inputIds: ids, attentionMask: mask, positionIds: pos };
}

export interface Agreement {
  /** The worst row's cosine. */
  minCos: number;
  meanCos: number;
  /** Fraction of rows whose argmax agrees. */
  top1: number;
}

/** Rows `from` to `to` (exclusive) of two [rows, width] arrays: cosine and argmax agreement. */
export function agreement(exact: Float32Array, other: Float32Array, width: number, from: number, to: number): Agreement {
  let minCos = 1, sumCos = 0, same = 0;
  for (let r = from; r < to; r++) {
    let dot = 0, na = 0, nb = 0, ia = 0, ib = 0;
    for (let v = 0; v < width; v++) {
      const a = exact[r * width + v], b = other[r * width + v];
      dot += a * b;
      na += a * a;
      nb += b * b;
      if (a > exact[r * width + ia]) ia = v;
      if (b > other[r * width + ib]) ib = v;
    }
    const c = dot / Math.sqrt(na * nb);
    minCos = Math.min(minCos, c);
    sumCos += c;
    if (ia === ib) same++;
  }
  return { minCos, meanCos: sumCos / (to - from), top1: same / (to - from) };
}

/** max |other − exact| over max |exact|, over all elements. */
export function maxRelDiff(exact: Float32Array, other: Float32Array): number {
  let scale = 0, diff = 0;
  for (let i = 0; i < exact.length; i++) {
    scale = Math.max(scale, Math.abs(exact[i]));
    diff = Math.max(diff, Math.abs(other[i] - exact[i]));
  }
  return diff / scale;
}
