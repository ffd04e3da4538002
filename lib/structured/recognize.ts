/**
 * A plain reference recognizer of {@link GrammarIR}: an Earley parser over code points (with the
 * Aycock-Horspool treatment of nullable rules), kept simple so it is obviously right. Tests use it to
 * check compiled grammars and the native matcher against it; the compiler uses it to keep only the
 * enum/const values that the rest of their schema allows.
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import type { GrammarIR } from './grammar-ir.js';
import { nullableRules } from './check.js';

type Sym = { t: 'cls'; ranges: Array<[number, number]>; neg: boolean } | { t: 'ref'; rule: number };

interface Item {
  rule: number;
  alt: number;
  dot: number;
  origin: number;
}

interface Compiled {
  alts: Sym[][][];
  nullable: boolean[];
}

function compile(ir: GrammarIR): Compiled {
  const alts = ir.rules.map((rule) =>
    rule.map((alt) =>
      alt.flatMap((item): Sym[] => {
        if ('lit' in item) return Array.from(item.lit, (c) => ({ t: 'cls', ranges: [[c.codePointAt(0)!, c.codePointAt(0)!]], neg: false }));
        if ('cls' in item) return [{ t: 'cls', ranges: item.cls, neg: item.neg === true }];
        if (item.ref < 0 || item.ref >= ir.rules.length) throw inputError(`grammar: rule ref ${item.ref} out of range`);
        return [{ t: 'ref', rule: item.ref }];
      }),
    ),
  );
  const nullable = nullableRules(ir);
  return { alts, nullable };
}

function matches(sym: Sym & { t: 'cls' }, cp: number): boolean {
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  const inside = sym.ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
  return inside !== sym.neg;
}

/** Recognizes a text code point by code point; `fork` makes an independent copy at the current point. */
export class GrammarRecognizer {
  private constructor(
    private readonly g: Compiled,
    private readonly root: number,
    private readonly sets: Item[][],
  ) {}

  static of(ir: GrammarIR): GrammarRecognizer {
    if (ir.root < 0 || ir.root >= ir.rules.length) throw inputError(`grammar: root ${ir.root} out of range`);
    const g = compile(ir);
    const r = new GrammarRecognizer(g, ir.root, []);
    r.sets.push(r.close([], 0, g.alts[ir.root].map((_, alt) => ({ rule: ir.root, alt, dot: 0, origin: 0 }))));
    return r;
  }

  fork(): GrammarRecognizer {
    return new GrammarRecognizer(this.g, this.root, [...this.sets]);
  }

  private get current(): Item[] {
    return this.sets[this.sets.length - 1];
  }

  /** Whether no continuation can ever be accepted (a code point was fed that fits nowhere). */
  get dead(): boolean {
    return this.current.length === 0;
  }

  /** Whether the text fed so far is a whole sentence. */
  get accepted(): boolean {
    return this.current.some(
      (it) => it.rule === this.root && it.origin === 0 && it.dot === this.g.alts[it.rule][it.alt].length,
    );
  }

  /** Whether some code point may follow the text fed so far. */
  get canContinue(): boolean {
    return this.current.some((it) => this.g.alts[it.rule][it.alt][it.dot]?.t === 'cls');
  }

  /** Feeds text; returns false once the text so far is no prefix of a sentence. */
  feed(text: string): boolean {
    for (const c of text) {
      if (this.dead) return false;
      const cp = c.codePointAt(0)!;
      const scanned: Item[] = [];
      for (const it of this.current) {
        const sym = this.g.alts[it.rule][it.alt][it.dot];
        if (sym?.t === 'cls' && matches(sym, cp)) scanned.push({ ...it, dot: it.dot + 1 });
      }
      this.sets.push(this.close(scanned, this.sets.length, []));
    }
    return !this.dead;
  }

  /** The Earley set at position `pos` from its kernel (and, at 0, the root's prediction). */
  private close(kernel: Item[], pos: number, initial: Item[]): Item[] {
    const items: Item[] = [];
    const seen = new Set<string>();
    const add = (it: Item) => {
      const key = `${it.rule},${it.alt},${it.dot},${it.origin}`;
      if (!seen.has(key)) {
        seen.add(key);
        items.push(it);
      }
    };
    kernel.forEach(add);
    initial.forEach(add);
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      const alt = this.g.alts[it.rule][it.alt];
      const sym = alt[it.dot];
      if (sym === undefined) {
        // Complete: advance every item at the origin waiting for this rule.
        const origin = it.origin === pos ? items : this.sets[it.origin];
        for (let k = 0; k < origin.length; k++) {
          const w = origin[k];
          const ws = this.g.alts[w.rule][w.alt][w.dot];
          if (ws?.t === 'ref' && ws.rule === it.rule) add({ ...w, dot: w.dot + 1 });
        }
      } else if (sym.t === 'ref') {
        this.g.alts[sym.rule].forEach((_, a) => add({ rule: sym.rule, alt: a, dot: 0, origin: pos }));
        if (this.g.nullable[sym.rule]) add({ ...it, dot: it.dot + 1 });
      }
    }
    return items;
  }
}

/** Whether `text` is a sentence of the grammar. */
export function recognizes(ir: GrammarIR, text: string): boolean {
  const r = GrammarRecognizer.of(ir);
  return r.feed(text) && r.accepted;
}
