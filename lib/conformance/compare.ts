/**
 * Stage comparisons of the conformance tool: exact for integers, scaled max-abs error for floats.
 * @internal
 * @module
 */

/** One compared stage of one case. @internal */
export interface StageResult {
  case: string;
  stage: string;
  /** 'exact': integers must be identical; 'abs': max |ours − ref| ≤ tol; 'rel': max |ours − ref| ≤ tol × max |ref|. */
  kind: 'exact' | 'abs' | 'rel';
  maxAbs: number;
  /** maxAbs / max |ref| (0 for exact stages). */
  maxRel: number;
  tolerance: number;
  passed: boolean;
  note: string;
}

/** @internal */
export function compareExact(
  caseName: string,
  stage: string,
  ours: ArrayLike<number | bigint>,
  ref: ArrayLike<number | bigint>,
): StageResult {
  let note = '';
  if (ours.length !== ref.length) note = `length ${ours.length} vs reference ${ref.length}`;
  else {
    for (let i = 0; i < ref.length; i++) {
      if (Number(ours[i]) !== Number(ref[i])) {
        note = `first difference at ${i}: ${Number(ours[i])} vs ${Number(ref[i])}`;
        break;
      }
    }
  }
  return { case: caseName, stage, kind: 'exact', maxAbs: note ? 1 : 0, maxRel: 0, tolerance: 0, passed: !note, note };
}

/**
 * Compares float arrays over the selected rows (`rowLen` values per row; `rows` null = all).
 * `kind: 'rel'` scales the tolerance by max |ref| over the compared values.
 * @internal
 */
export function compareFloat(
  caseName: string,
  stage: string,
  ours: Float32Array,
  ref: Float32Array,
  kind: 'abs' | 'rel',
  tolerance: number,
  rowLen = ref.length,
  rows: readonly number[] | null = null,
): StageResult {
  if (ours.length !== ref.length) {
    return { case: caseName, stage, kind, maxAbs: Infinity, maxRel: Infinity, tolerance, passed: false, note: `length ${ours.length} vs reference ${ref.length}` };
  }
  const picked = rows ?? Array.from({ length: rowLen > 0 ? ref.length / rowLen : 0 }, (_, i) => i);
  let maxAbs = 0, maxRef = 0, worst = -1;
  let bad = false;
  for (const r of picked) {
    for (let i = r * rowLen; i < (r + 1) * rowLen; i++) {
      const d = Math.abs(ours[i] - ref[i]);
      if (!Number.isFinite(ours[i])) bad = true;
      if (d > maxAbs) {
        maxAbs = d;
        worst = i;
      }
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
  }
  const maxRel = maxRef > 0 ? maxAbs / maxRef : maxAbs;
  const limit = kind === 'rel' ? tolerance * maxRef : tolerance;
  const passed = !bad && maxAbs <= limit;
  const note = bad ? 'non-finite values' : passed ? '' : `worst at element ${worst}`;
  return { case: caseName, stage, kind, maxAbs, maxRel, tolerance, passed, note };
}
