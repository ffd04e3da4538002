/**
 * `pattern` (or `format`) together with `minLength`/`maxLength`: the pattern's alternatives narrowed so
 * every match also has an allowed length. Narrowing keeps a subset of the matching strings, which is all
 * structured output needs: repetitions are capped (one cap for all, the largest that fits maxLength) and,
 * for minLength, a top-level repetition must repeat more. Alternatives that cannot be fixed are dropped;
 * when none is left the combination is reported as unsupported.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import { type Rx, lengthRange } from './pattern-ast.js';

/** The largest repetition cap tried; larger ones unroll to too many rules. */
const MAX_CAP = 4096;

function capped(node: Rx, cap: number): Rx {
  switch (node.k) {
    case 'set':
    case 'any':
      return node;
    case 'seq':
      return { k: 'seq', items: node.items.map((n) => capped(n, cap)) };
    case 'alt':
      return { k: 'alt', alts: node.alts.map((n) => capped(n, cap)) };
    case 'rep': {
      const max = node.max === null || node.max > cap ? Math.max(node.min, cap) : node.max;
      return { k: 'rep', node: capped(node.node, cap), min: node.min, max };
    }
  }
}

/** `branch` (a top-level alternative) made to match at least `min` code points, or null. */
function raiseMin(branch: Rx, min: number): Rx | null {
  const items = branch.k === 'seq' ? [...branch.items] : [branch];
  for (let i = 0; i < items.length; i++) {
    const deficit = min - lengthRange({ k: 'seq', items })[0];
    if (deficit <= 0) break;
    const item = items[i];
    if (item.k !== 'rep') continue;
    const [each] = lengthRange(item.node);
    if (each === 0) continue;
    const want = item.min + Math.ceil(deficit / each);
    const count = item.max === null ? want : Math.min(want, item.max);
    items[i] = { ...item, min: count };
  }
  const out: Rx = { k: 'seq', items };
  return lengthRange(out)[0] >= min ? out : null;
}

/** `branch` capped so no match is longer than `max` code points, or null. */
function capMax(branch: Rx, max: number): Rx | null {
  if (lengthRange(branch)[1] <= max) return branch;
  if (lengthRange(capped(branch, 0))[1] > max) return null;
  let lo = 0;
  let hi = MAX_CAP;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (lengthRange(capped(branch, mid))[1] <= max) lo = mid;
    else hi = mid - 1;
  }
  return capped(branch, lo);
}

/** The branches narrowed to lengths in [min, max] (max null: unbounded). */
export function fitLength(branches: Rx[], min: number, max: number | null, where: string): Rx[] {
  const fitted: Rx[] = [];
  for (const b of branches) {
    const raised = raiseMin(b, min);
    const done = raised && max !== null ? capMax(raised, max) : raised;
    if (done && lengthRange(done)[0] >= min) fitted.push(done);
  }
  if (fitted.length === 0) {
    throw new QwenVLError(
      'E_UNSUPPORTED',
      `${where}: no match of the pattern could be narrowed to minLength ${min}/maxLength ${max ?? 'unbounded'} ` +
        '(structured output supports the combination when the pattern repeats something it can repeat more or less)',
    );
  }
  return fitted;
}
