/**
 * The members of an object schema as grammar: declared members in order, optional ones skippable, then
 * (with additionalProperties) any number of extra members. After "{" or "," the members that may come
 * next are a run of declared ones (up to the next required one); they are offered as a few tries of
 * keys over aligned blocks of that run, so a parser keeps O(log n) alternatives alive at a key instead
 * of one per member, while the grammar grows only to O(n log n).
 * @internal
 * @module
 */
import { type Alternative, lit, ref } from './grammar-builder.js';
import type { JsonText } from './json-text.js';

export interface Member {
  /** The key as JSON text, quotes included. */
  key: string;
  /** The rule of the member's value. */
  value: number;
  required: boolean;
}

/** [i, r] as aligned power-of-two blocks [start, size] (a block of size 2^k starts at a multiple of it). */
function blocks(i: number, r: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let a = i; a <= r; ) {
    let size = 1;
    while (a % (size * 2) === 0 && a + size * 2 - 1 <= r) size *= 2;
    out.push([a, size]);
    a += size;
  }
  return out;
}

/** The rule of `{ ... }` with these members; `extra` is one extra member's items, or null for none. */
export function objectRule(j: JsonText, members: readonly Member[], extra: Alternative | null): number {
  const b = j.b;
  const ws = ref(j.ws());
  const n = members.length;
  // after[i]: a member was written and the next candidates start at i: "}" or "," then one of them.
  const after: number[] = new Array<number>(n + 1);
  let tail: number | null = null;
  if (extra === null) after[n] = b.rule([[lit('}')]]);
  else {
    after[n] = b.reserve();
    tail = b.rule([[...extra, ws, ref(after[n])]]);
    b.define(after[n], [[lit('}')], [lit(','), ws, ref(tail)]]);
  }
  const tries = new Map<string, number>();
  const trie = (start: number, size: number): number => {
    const key = `${start},${size}`;
    let r = tries.get(key);
    if (r === undefined) {
      const entries = members.slice(start, start + size).map((m, k) => ({
        text: m.key,
        then: [ws, lit(':'), ws, ref(m.value), ws, ref(after[start + k + 1])],
      }));
      tries.set(key, (r = b.choice(entries)));
    }
    return r;
  };
  let pick: number | null = tail; // after "{" or ",": the members that may come from i on
  let firstRequired = n;
  let allOptional = true;
  for (let i = n - 1; i >= 0; i--) {
    if (members[i].required) firstRequired = i;
    const last = firstRequired === n ? n - 1 : firstRequired;
    const alts: Alternative[] = blocks(i, last).map(([start, size]) => [ref(trie(start, size))]);
    if (firstRequired === n && tail !== null) alts.push([ref(tail)]);
    pick = b.rule(alts);
    allOptional &&= !members[i].required;
    after[i] = b.rule([...(allOptional ? [[lit('}')]] : []), [lit(','), ws, ref(pick)]]);
  }
  const first = b.rule([...(allOptional ? [[lit('}')]] : []), ...(pick !== null ? [[ref(pick)]] : [])]);
  return b.rule([[lit('{'), ws, ref(first)]]);
}
