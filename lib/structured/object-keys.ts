/**
 * Keys of additional properties: strings that differ from every declared property name, so an extra
 * member can never stand in for (or duplicate) a declared one. Built as the complement of a trie of the
 * declared names. Extra keys are written without escapes, so what the grammar sees is the key itself.
 * @internal
 * @module
 */
import { type Alternative, cls, lit, ref } from './grammar-builder.js';
import { charSet, setHas, subtractSets } from './code-point-set.js';
import { type JsonText, RAW_STRING_CHARS } from './json-text.js';

interface TrieNode {
  word: boolean;
  children: Map<string, TrieNode>;
}

/** A rule for `"key"` (quotes included): any unescaped key other than the `excluded` names. */
export function keyExcept(j: JsonText, excluded: readonly string[]): number {
  const root: TrieNode = { word: false, children: new Map() };
  for (const name of excluded) {
    // A name with a character that must be escaped can never be written unescaped: nothing to exclude.
    if (![...name].every((c) => setHas(RAW_STRING_CHARS, c.codePointAt(0)!))) continue;
    let node = root;
    for (const c of name) {
      let next = node.children.get(c);
      if (!next) {
        next = { word: false, children: new Map() };
        node.children.set(c, next);
      }
      node = next;
    }
    node.word = true;
  }
  const rawChar = cls(RAW_STRING_CHARS);
  const anyTail = j.b.reserve();
  j.b.define(anyTail, [[lit('"')], [rawChar, ref(anyTail)]]);
  const rest = (node: TrieNode): number => {
    const alts: Alternative[] = [];
    if (!node.word) alts.push([lit('"')]);
    for (const [c, child] of node.children) alts.push([lit(c), ref(rest(child))]);
    const others = subtractSets(RAW_STRING_CHARS, charSet([...node.children.keys()].join('')));
    if (others.length > 0) alts.push([cls(others), ref(anyTail)]);
    return j.b.rule(alts);
  };
  return j.b.rule([[lit('"'), ref(rest(root))]]);
}
