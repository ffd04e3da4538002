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

type Sym = { t: 'cls'; ranges: Array<[number, number]>; neg: boolean } | { t: 'ref'; rule: number } | { t: 'end'; rule: number };

/**
 * The grammar with every (rule, alternative, dot) position numbered: `sym[p]` is what position p expects
 * next (`end` when the alternative is complete), p + 1 is the position after it, and `starts[r]` lists
 * rule r's first positions.
 */
interface Compiled {
  sym: Sym[];
  starts: number[][];
  nullable: boolean[];
}

const compiled = new WeakMap<GrammarIR, Compiled>();

/** The numbered form of `ir`, made once per IR object (an IR is not changed once built). */
function compile(ir: GrammarIR): Compiled {
  let g = compiled.get(ir);
  if (!g) {
    g = number(ir);
    compiled.set(ir, g);
  }
  return g;
}

function number(ir: GrammarIR): Compiled {
  const sym: Sym[] = [];
  const starts = ir.rules.map((rule, r) =>
    rule.map((alt) => {
      const first = sym.length;
      for (const item of alt) {
        if ('lit' in item) {
          for (const c of item.lit) sym.push({ t: 'cls', ranges: [[c.codePointAt(0)!, c.codePointAt(0)!]], neg: false });
        } else if ('cls' in item) sym.push({ t: 'cls', ranges: item.cls, neg: item.neg === true });
        else {
          if (item.ref < 0 || item.ref >= ir.rules.length) throw inputError(`grammar: rule ref ${item.ref} out of range`);
          sym.push({ t: 'ref', rule: item.ref });
        }
      }
      sym.push({ t: 'end', rule: r });
      return first;
    }),
  );
  return { sym, starts, nullable: nullableRules(ir) };
}

function matches(sym: Sym & { t: 'cls' }, cp: number): boolean {
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  const inside = sym.ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
  return inside !== sym.neg;
}

/** One Earley set: items as position * 2^32 + origin, and the items waiting for each rule. */
interface EarleySet {
  items: number[];
  waiting: Map<number, number[]>;
}

const ORIGIN = 2 ** 32;

/** Recognizes a text code point by code point; `fork` makes an independent copy at the current point. */
export class GrammarRecognizer {
  private constructor(
    private readonly g: Compiled,
    private readonly root: number,
    private readonly sets: EarleySet[],
  ) {}

  static of(ir: GrammarIR): GrammarRecognizer {
    if (ir.root < 0 || ir.root >= ir.rules.length) throw inputError(`grammar: root ${ir.root} out of range`);
    const g = compile(ir);
    const r = new GrammarRecognizer(g, ir.root, []);
    r.sets.push(r.close(g.starts[ir.root].map((p) => p * ORIGIN)));
    return r;
  }

  fork(): GrammarRecognizer {
    return new GrammarRecognizer(this.g, this.root, [...this.sets]);
  }

  private get current(): EarleySet {
    return this.sets[this.sets.length - 1];
  }

  /** Whether no continuation can ever be accepted (a code point was fed that fits nowhere). */
  get dead(): boolean {
    return this.current.items.length === 0;
  }

  /** Items in the current Earley set: a measure of how many parses are alive (ambiguity). */
  get width(): number {
    return this.current.items.length;
  }

  /** Whether the text fed so far is a whole sentence. */
  get accepted(): boolean {
    return this.current.items.some((key) => {
      const s = this.g.sym[Math.floor(key / ORIGIN)];
      return s.t === 'end' && s.rule === this.root && key % ORIGIN === 0;
    });
  }

  /** Whether some code point may follow the text fed so far. */
  get canContinue(): boolean {
    return this.current.items.some((key) => this.g.sym[Math.floor(key / ORIGIN)].t === 'cls');
  }

  /** Feeds text; returns false once the text so far is no prefix of a sentence. */
  feed(text: string): boolean {
    for (const c of text) {
      if (this.dead) return false;
      const cp = c.codePointAt(0)!;
      const scanned: number[] = [];
      for (const key of this.current.items) {
        const s = this.g.sym[Math.floor(key / ORIGIN)];
        if (s.t === 'cls' && matches(s, cp)) scanned.push(key + ORIGIN);
      }
      this.sets.push(this.close(scanned));
    }
    return !this.dead;
  }

  /** The Earley set at the next position from its kernel: predictions and completions added. */
  private close(kernel: number[]): EarleySet {
    const pos = this.sets.length;
    const set: EarleySet = { items: [], waiting: new Map() };
    const seen = new Set<number>();
    const add = (key: number) => {
      if (seen.has(key)) return;
      seen.add(key);
      set.items.push(key);
    };
    kernel.forEach(add);
    for (let i = 0; i < set.items.length; i++) {
      const key = set.items[i];
      const p = Math.floor(key / ORIGIN);
      const origin = key % ORIGIN;
      const s = this.g.sym[p];
      if (s.t === 'end') {
        // Complete: advance every item at the origin waiting for this rule.
        const from = origin === pos ? set : this.sets[origin];
        const waiters = from.waiting.get(s.rule) ?? [];
        for (let k = 0; k < waiters.length; k++) add(waiters[k] + ORIGIN);
      } else if (s.t === 'ref') {
        let list = set.waiting.get(s.rule);
        if (!list) set.waiting.set(s.rule, (list = []));
        list.push(key);
        for (const start of this.g.starts[s.rule]) add(start * ORIGIN + pos);
        // Aycock-Horspool: a nullable rule may be skipped at once.
        if (this.g.nullable[s.rule]) add(key + ORIGIN);
      }
    }
    return set;
  }
}

/** Whether `text` is a sentence of the grammar. */
export function recognizes(ir: GrammarIR, text: string): boolean {
  const r = GrammarRecognizer.of(ir);
  return r.feed(text) && r.accepted;
}
