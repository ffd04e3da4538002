/**
 * A {@link GrammarIR} as the flat Int32Array the native matcher reads (its layout: native/ops/grammar.h).
 * Checks the IR's shape on the way (types, integer fields, well-formed literal text); the native side
 * checks the grammar's rules (indices, ranges, left recursion) and names the rule at fault.
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import { describe } from '../validate.js';
import type { GrammarIR, GrammarItem } from './grammar-ir.js';

const encoder = new TextEncoder();
/** A lone surrogate (paired ones are one code point under the u flag). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function int(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
    throw inputError(`${where}: expected an integer, got ${describe(v)}`);
  }
  return v;
}

function list(v: unknown, where: string): readonly unknown[] {
  if (!Array.isArray(v)) throw inputError(`${where}: expected an array, got ${describe(v)}`);
  return v;
}

function item(it: GrammarItem, out: number[], where: string): void {
  if (it === null || typeof it !== 'object') throw inputError(`${where}: expected a grammar item, got ${describe(it)}`);
  if ('lit' in it) {
    if (typeof it.lit !== 'string' || it.lit.length === 0 || LONE_SURROGATE.test(it.lit)) {
      throw inputError(`${where}: lit must be a non-empty, well-formed string`);
    }
    const bytes = encoder.encode(it.lit);
    out.push(0, bytes.length);
    for (const b of bytes) out.push(b);
  } else if ('cls' in it) {
    const ranges = list(it.cls, `${where}.cls`);
    out.push(1, it.neg === true ? 1 : 0, ranges.length);
    ranges.forEach((r, k) => {
      const pair = list(r, `${where}.cls[${k}]`);
      if (pair.length !== 2) throw inputError(`${where}.cls[${k}]: expected [lo, hi]`);
      out.push(int(pair[0], `${where}.cls[${k}][0]`), int(pair[1], `${where}.cls[${k}][1]`));
    });
  } else if ('ref' in it) {
    out.push(2, int(it.ref, `${where}.ref`));
  } else {
    throw inputError(`${where}: expected {lit}, {cls} or {ref}`);
  }
}

/** The flat form of `g`; E_INPUT naming the rule, alternative and item when its shape is wrong. @internal */
export function flattenGrammar(g: GrammarIR): Int32Array {
  const rules = list(g?.rules, 'grammar.rules') as GrammarIR['rules'];
  const out: number[] = [rules.length, int(g.root, 'grammar.root')];
  rules.forEach((rule, r) => {
    const alts = list(rule, `grammar.rules[${r}]`) as GrammarItem[][];
    out.push(alts.length);
    alts.forEach((alt, a) => {
      const items = list(alt, `grammar.rules[${r}][${a}]`) as GrammarItem[];
      out.push(items.length);
      items.forEach((it, i) => item(it, out, `grammar.rules[${r}][${a}][${i}]`));
    });
  });
  return Int32Array.from(out);
}
