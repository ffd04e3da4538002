/**
 * A context-free grammar over Unicode text: what structured output compiles a JSON schema to, and what the
 * native matcher runs. `rules[i]` is rule i: a list of alternatives; each alternative is a sequence of items
 * matched one after another ([] matches the empty text). The grammar's language is that of `rules[root]`.
 */
export interface GrammarIR {
  rules: GrammarItem[][][];
  root: number;
}

/** One element of an alternative. */
export type GrammarItem =
  /** This exact, non-empty text (matched as its UTF-8 bytes). */
  | { lit: string }
  /** One Unicode code point inside one of the inclusive [lo, hi] ranges (with `neg`: inside none of them). */
  | { cls: Array<[number, number]>; neg?: boolean }
  /** Rule `ref` matched here. */
  | { ref: number };
