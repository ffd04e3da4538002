/**
 * Sets of Unicode code points as sorted, disjoint, non-adjacent inclusive ranges: the character classes of
 * the grammar IR and of the pattern compiler. Surrogates (0xD800-0xDFFF) are never members, matching the
 * grammar IR's rule that they never match.
 * @internal
 * @module
 */

/** A normalized code point set: sorted, disjoint, non-adjacent [lo, hi] ranges without surrogates. */
export type CodePointSet = Array<[number, number]>;

export const MAX_CODE_POINT = 0x10ffff;
const SURROGATES: [number, number] = [0xd800, 0xdfff];

/** Sorts, merges and strips surrogates from any list of ranges. */
export function normalizeSet(ranges: ReadonlyArray<readonly [number, number]>): CodePointSet {
  const sorted = ranges
    .filter(([lo, hi]) => lo <= hi)
    .map(([lo, hi]): [number, number] => [Math.max(0, lo), Math.min(MAX_CODE_POINT, hi)])
    .sort((a, b) => a[0] - b[0]);
  const merged: CodePointSet = [];
  for (const [lo, hi] of sorted) {
    const last = merged[merged.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  return subtractRaw(merged, [SURROGATES]);
}

function subtractRaw(a: CodePointSet, b: ReadonlyArray<readonly [number, number]>): CodePointSet {
  let out = a.map(([lo, hi]): [number, number] => [lo, hi]);
  for (const [blo, bhi] of b) {
    const next: CodePointSet = [];
    for (const [lo, hi] of out) {
      if (hi < blo || lo > bhi) next.push([lo, hi]);
      else {
        if (lo < blo) next.push([lo, blo - 1]);
        if (hi > bhi) next.push([bhi + 1, hi]);
      }
    }
    out = next;
  }
  return out;
}

export function rangeSet(lo: number, hi: number): CodePointSet {
  return normalizeSet([[lo, hi]]);
}

export function charSet(chars: string): CodePointSet {
  return normalizeSet([...chars].map((c): [number, number] => [c.codePointAt(0)!, c.codePointAt(0)!]));
}

export function unionSets(...sets: CodePointSet[]): CodePointSet {
  return normalizeSet(sets.flat());
}

export function subtractSets(a: CodePointSet, b: CodePointSet): CodePointSet {
  return subtractRaw(a, b);
}

export function complementSet(a: CodePointSet): CodePointSet {
  return subtractRaw([[0, MAX_CODE_POINT]], [...a, SURROGATES]);
}

export function intersectSets(a: CodePointSet, b: CodePointSet): CodePointSet {
  return subtractRaw(a, complementSet(b));
}

export function setHas(set: CodePointSet, cp: number): boolean {
  return set.some(([lo, hi]) => cp >= lo && cp <= hi);
}

export function setSize(set: CodePointSet): number {
  return set.reduce((n, [lo, hi]) => n + hi - lo + 1, 0);
}
