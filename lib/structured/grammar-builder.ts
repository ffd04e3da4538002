/**
 * Builds a {@link GrammarIR} rule by rule. Identical rules are shared (one rule per distinct body), literals
 * next to each other in an alternative are joined, and `build` keeps only the rules reachable from the root,
 * numbered in the order they are first reached, so the same calls always give the same IR.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { GrammarIR, GrammarItem } from './grammar-ir.js';
import type { CodePointSet } from './code-point-set.js';

export type Alternative = GrammarItem[];

export function lit(text: string): GrammarItem {
  return { lit: text };
}

export function cls(set: CodePointSet, neg = false): GrammarItem {
  return neg ? { cls: set.map(([lo, hi]): [number, number] => [lo, hi]), neg: true } : { cls: set.map(([lo, hi]): [number, number] => [lo, hi]) };
}

export function ref(rule: number): GrammarItem {
  return { ref: rule };
}

/** Drops empty literals and joins neighbouring ones. */
function normalizeAlternative(alt: Alternative): Alternative {
  const out: Alternative = [];
  for (const item of alt) {
    if ('lit' in item) {
      if (item.lit === '') continue;
      const last = out[out.length - 1];
      if (last && 'lit' in last) {
        out[out.length - 1] = { lit: last.lit + item.lit };
        continue;
      }
    }
    out.push(item);
  }
  return out;
}

export class GrammarBuilder {
  private readonly rules: Array<Alternative[] | undefined> = [];
  private readonly byBody = new Map<string, number>();

  /** A rule with these alternatives: an existing identical rule when there is one. */
  rule(alternatives: Alternative[]): number {
    const alts = alternatives.map(normalizeAlternative);
    const key = JSON.stringify(alts);
    const known = this.byBody.get(key);
    if (known !== undefined) return known;
    this.rules.push(alts);
    this.byBody.set(key, this.rules.length - 1);
    return this.rules.length - 1;
  }

  /** A rule matching exactly one of `texts` (as a trie, see `choice`). */
  literals(texts: readonly string[]): number {
    return this.choice(texts.map((text) => ({ text, then: [] })));
  }

  /**
   * A rule matching one entry's text followed by that entry's `then`, as a trie: texts sharing a prefix
   * share its items, so the choice is made one character at a time instead of keeping an alternative per
   * entry alive. A text repeated keeps its first entry.
   */
  choice(entries: ReadonlyArray<{ text: string; then: Alternative }>): number {
    interface Node {
      then?: Alternative;
      next: Map<string, Node>;
    }
    const root: Node = { next: new Map() };
    for (const { text, then } of entries) {
      let node = root;
      for (const c of text) {
        let child = node.next.get(c);
        if (!child) node.next.set(c, (child = { next: new Map() }));
        node = child;
      }
      node.then ??= then;
    }
    const emit = (node: Node): Alternative[] => {
      const alts: Alternative[] = node.then ? [node.then] : [];
      for (const [c, child] of node.next) {
        // Follow a run of single-child nodes as one literal.
        let run = c;
        let at = child;
        while (!at.then && at.next.size === 1) {
          const [[c2, n2]] = at.next;
          run += c2;
          at = n2;
        }
        alts.push(at.next.size === 0 ? [lit(run), ...at.then!] : [lit(run), ref(this.rule(emit(at)))]);
      }
      return alts;
    };
    return this.rule(emit(root));
  }

  /** A rule that `define` fills in later: how recursive rules refer to themselves. */
  reserve(): number {
    this.rules.push(undefined);
    return this.rules.length - 1;
  }

  define(rule: number, alternatives: Alternative[]): void {
    if (this.rules[rule] !== undefined) throw new Error(`grammar rule ${rule} is already defined`);
    this.rules[rule] = alternatives.map(normalizeAlternative);
  }

  isDefined(rule: number): boolean {
    return this.rules[rule] !== undefined;
  }

  /** The alternatives of a defined rule (to inline it into another). */
  alternatives(rule: number): Alternative[] {
    const alts = this.rules[rule];
    if (alts === undefined) throw new Error(`grammar rule ${rule} is not defined yet`);
    return alts;
  }

  /** Whether every rule reachable from `root` is defined. */
  complete(root: number): boolean {
    return this.reachable(root).every((r) => this.rules[r] !== undefined);
  }

  private reachable(root: number): number[] {
    const order = [root];
    const seen = new Set(order);
    for (let i = 0; i < order.length; i++) {
      for (const alt of this.rules[order[i]] ?? []) {
        for (const item of alt) {
          if ('ref' in item && !seen.has(item.ref)) {
            seen.add(item.ref);
            order.push(item.ref);
          }
        }
      }
    }
    return order;
  }

  /** The IR of the rules reachable from `root`, renumbered in reach order (root is rule 0). */
  build(root: number): GrammarIR {
    const order = this.reachable(root);
    const renumber = new Map(order.map((r, i) => [r, i]));
    const rules = order.map((r) => {
      const alts = this.rules[r];
      if (alts === undefined) throw new QwenVLError('E_INPUT', `grammar rule ${r} was never defined`);
      return alts.map((alt) =>
        alt.map((item): GrammarItem => ('ref' in item ? { ref: renumber.get(item.ref)! } : item)),
      );
    });
    return { rules, root: 0 };
  }
}
