/**
 * Random sentences of a GrammarIR, for property tests: seeded (same seed, same sentences) and depth
 * limited (past `maxDepth` nested rules, or `maxLength` code points, each rule takes its alternative
 * that finishes soonest), so every call ends.
 */
import type { GrammarIR, GrammarItem } from '../../lib/structured/grammar-ir.js';

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** For each rule, the fewest code points a sentence of it has (Infinity: it has no finite sentence). */
function shortest(ir: GrammarIR): number[] {
  const best = ir.rules.map(() => Infinity);
  const cost = (item: GrammarItem): number => ('lit' in item ? [...item.lit].length : 'cls' in item ? 1 : best[item.ref]);
  for (let changed = true; changed; ) {
    changed = false;
    ir.rules.forEach((alts, r) => {
      for (const alt of alts) {
        const c = alt.reduce((n, it) => n + cost(it), 0);
        if (c < best[r]) {
          best[r] = c;
          changed = true;
        }
      }
    });
  }
  return best;
}

const SURROGATE_LO = 0xd800;
const SURROGATE_HI = 0xdfff;

/** A random code point of a class: often ASCII when the class has some, sometimes anywhere in it. */
function pickCodePoint(item: { cls: Array<[number, number]>; neg?: boolean }, rnd: () => number): number {
  const inClass = (cp: number) =>
    !(cp >= SURROGATE_LO && cp <= SURROGATE_HI) && item.cls.some(([lo, hi]) => cp >= lo && cp <= hi) !== (item.neg === true);
  for (let tries = 0; tries < 200; tries++) {
    const roll = rnd();
    let cp: number;
    if (!item.neg && roll < 0.6) {
      const [lo, hi] = item.cls[Math.floor(rnd() * item.cls.length)];
      const top = roll < 0.45 ? Math.min(hi, Math.max(lo, 0x7e)) : hi;
      cp = lo + Math.floor(rnd() * (top - lo + 1));
    } else if (roll < 0.75) cp = 0x20 + Math.floor(rnd() * 0x5f);
    else if (roll < 0.9) cp = Math.floor(rnd() * 0x800);
    else cp = Math.floor(rnd() * 0x110000);
    if (inClass(cp)) return cp;
  }
  for (let cp = 0; cp <= 0x10ffff; cp++) if (inClass(cp)) return cp;
  throw new Error('empty character class');
}

export interface SentenceOptions {
  maxDepth?: number;
  maxLength?: number;
}

/** One random sentence of `ir`. */
export function randomSentence(ir: GrammarIR, rnd: () => number, options: SentenceOptions = {}): string {
  const maxDepth = options.maxDepth ?? 12;
  const maxLength = options.maxLength ?? 400;
  const best = shortest(ir);
  if (best[ir.root] === Infinity) throw new Error('the grammar has no finite sentence');
  const out: string[] = [];
  let length = 0;
  // Work stack of [item, depth], processed last-in first-out (pushed in reverse).
  const stack: Array<[GrammarItem, number]> = [[{ ref: ir.root }, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if ('lit' in item) {
      out.push(item.lit);
      length += item.lit.length;
    } else if ('cls' in item) {
      out.push(String.fromCodePoint(pickCodePoint(item, rnd)));
      length++;
    } else {
      const alts = ir.rules[item.ref];
      const finite = alts.filter((alt) => alt.every((it) => !('ref' in it) || best[it.ref] < Infinity));
      let alt: GrammarItem[];
      if (depth >= maxDepth || length >= maxLength) {
        const cost = (a: GrammarItem[]) =>
          a.reduce((n, it) => n + ('lit' in it ? it.lit.length : 'cls' in it ? 1 : best[it.ref]), 0);
        alt = finite.reduce((x, y) => (cost(y) < cost(x) ? y : x));
      } else alt = finite[Math.floor(rnd() * finite.length)];
      for (let i = alt.length - 1; i >= 0; i--) stack.push([alt[i], depth + 1]);
    }
  }
  return out.join('');
}
