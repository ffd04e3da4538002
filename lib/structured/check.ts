/**
 * The grammar IR contract (grammar-ir.ts) checked in TypeScript: valid indices, non-empty rules and
 * literals, code point ranges, and no left recursion. The compiler runs it on every grammar it emits;
 * the native matcher checks the same rules on its side.
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import type { GrammarIR } from './grammar-ir.js';

/** Which rules can match the empty text. */
export function nullableRules(ir: GrammarIR): boolean[] {
  const nullable = ir.rules.map(() => false);
  for (let changed = true; changed; ) {
    changed = false;
    ir.rules.forEach((alts, r) => {
      if (!nullable[r] && alts.some((alt) => alt.every((it) => 'ref' in it && nullable[it.ref]))) {
        nullable[r] = true;
        changed = true;
      }
    });
  }
  return nullable;
}

/** A rule reachable from itself without consuming text, as a cycle of rule indices; null when none. */
export function leftRecursion(ir: GrammarIR): number[] | null {
  const nullable = nullableRules(ir);
  // edges[r]: rules that r may start with (reached through a nullable prefix).
  const edges = ir.rules.map((alts) => {
    const out = new Set<number>();
    for (const alt of alts) {
      for (const it of alt) {
        if (!('ref' in it)) break;
        out.add(it.ref);
        if (!nullable[it.ref]) break;
      }
    }
    return [...out];
  });
  const state = ir.rules.map(() => 0); // 0 new, 1 on the stack, 2 done
  const stack: number[] = [];
  const visit = (r: number): number[] | null => {
    state[r] = 1;
    stack.push(r);
    for (const next of edges[r]) {
      if (state[next] === 1) return [...stack.slice(stack.indexOf(next)), next];
      if (state[next] === 0) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    state[r] = 2;
    return null;
  };
  for (let r = 0; r < ir.rules.length; r++) {
    if (state[r] === 0) {
      const cycle = visit(r);
      if (cycle) return cycle;
    }
  }
  return null;
}

/** E_INPUT naming the rule when `ir` breaks the contract. */
export function checkGrammar(ir: GrammarIR): void {
  const n = ir.rules.length;
  if (!Number.isInteger(ir.root) || ir.root < 0 || ir.root >= n) throw inputError(`grammar: root ${ir.root} is not a rule`);
  ir.rules.forEach((alts, r) => {
    if (alts.length === 0) throw inputError(`grammar: rule ${r} has no alternatives`);
    for (const alt of alts) {
      for (const it of alt) {
        if ('lit' in it) {
          if (it.lit.length === 0) throw inputError(`grammar: rule ${r} has an empty literal`);
        } else if ('cls' in it) {
          for (const [lo, hi] of it.cls) {
            if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && lo <= hi && hi <= 0x10ffff)) {
              throw inputError(`grammar: rule ${r} has a bad code point range [${lo}, ${hi}]`);
            }
          }
        } else if (!(Number.isInteger(it.ref) && it.ref >= 0 && it.ref < n)) {
          throw inputError(`grammar: rule ${r} refers to rule ${it.ref}, which does not exist`);
        }
      }
    }
  });
  const cycle = leftRecursion(ir);
  if (cycle) throw inputError(`grammar: rule ${cycle[0]} is left recursive (${cycle.join(' -> ')})`);
}
