/**
 * The regular expressions `pattern` compiles through: a small AST of code point sets, sequences,
 * alternations and counted repetitions, and the facts about it the compiler needs.
 * @internal
 * @module
 */
import type { CodePointSet } from './code-point-set.js';

export type Rx =
  | { k: 'set'; set: CodePointSet }
  /** Any one code point, in any JSON spelling (the unanchored ends of a pattern). */
  | { k: 'any' }
  | { k: 'seq'; items: Rx[] }
  | { k: 'alt'; alts: Rx[] }
  | { k: 'rep'; node: Rx; min: number; max: number | null };

export function nullable(node: Rx): boolean {
  switch (node.k) {
    case 'set':
    case 'any':
      return false;
    case 'seq':
      return node.items.every(nullable);
    case 'alt':
      return node.alts.some(nullable);
    case 'rep':
      return node.min === 0 || nullable(node.node);
  }
}

/** The fewest and most code points a match has (Infinity: unbounded). */
export function lengthRange(node: Rx): [number, number] {
  switch (node.k) {
    case 'set':
    case 'any':
      return [1, 1];
    case 'seq':
      return node.items.map(lengthRange).reduce(([a, b], [c, d]) => [a + c, b + d], [0, 0]);
    case 'alt': {
      const ranges = node.alts.map(lengthRange);
      return [Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1]))];
    }
    case 'rep': {
      const [lo, hi] = lengthRange(node.node);
      const most = hi === 0 ? 0 : node.max === null ? Infinity : node.max * hi;
      return [node.min * lo, most];
    }
  }
}
