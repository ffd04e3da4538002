/**
 * JSON schema `pattern` (an ECMAScript regular expression with the `u` flag, matched anywhere in the string
 * unless anchored) compiled to grammar rules over string content. The subset: literals and escapes, classes
 * (`[...]`, `[^...]`, `\d \w \s` and their negations, `.`), groups (capturing, `(?:`, named), alternation,
 * the quantifiers `* + ? {n} {n,} {n,m}` (greedy or lazy: the same language), and `^`/`$` at the start/end
 * of a top-level alternative. Anything else (lookaround, backreferences, word boundaries, `\p{...}`, anchors
 * elsewhere) is reported as unsupported.
 * @internal
 * @module
 */
import { QwenVLError, inputError } from '../errors.js';
import { type Alternative, ref } from './grammar-builder.js';
import type { JsonText } from './json-text.js';
import { type Rx, nullable } from './pattern-ast.js';
import { fitLength } from './pattern-length.js';
import {
  type CodePointSet,
  charSet,
  complementSet,
  normalizeSet,
  rangeSet,
  unionSets,
} from './code-point-set.js';

/** The most a `{n,m}` count may be: larger counts unroll to too many rules. */
export const MAX_PATTERN_REPEAT = 1000;

const DIGITS = rangeSet(0x30, 0x39);
const WORD = unionSets(DIGITS, rangeSet(0x41, 0x5a), rangeSet(0x61, 0x7a), charSet('_'));
const SPACE = normalizeSet([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]);
const LINE_TERMINATORS = charSet('\n\r\u2028\u2029');
const SYNTAX = '^$\\.*+?()[]{}|/-';

class PatternParser {
  private readonly cps: string[];
  private pos = 0;

  constructor(
    private readonly pattern: string,
    private readonly where: string,
  ) {
    this.cps = Array.from(pattern);
  }

  private unsupported(what: string): QwenVLError {
    return new QwenVLError(
      'E_UNSUPPORTED',
      `${this.where}: pattern ${JSON.stringify(this.pattern)} uses ${what}, which structured output does not support`,
    );
  }

  private peek(offset = 0): string | undefined {
    return this.cps[this.pos + offset];
  }

  /** Top level: alternatives, each with its own optional anchors. */
  parseTop(): Array<{ node: Rx; start: boolean; end: boolean }> {
    const branches: Array<{ node: Rx; start: boolean; end: boolean }> = [];
    for (;;) {
      const start = this.peek() === '^';
      if (start) this.pos++;
      const node = this.parseSeq(true);
      const end = this.peek() === '$';
      if (end) this.pos++;
      branches.push({ node, start, end });
      if (this.peek() === undefined) return branches;
      if (this.peek() !== '|') throw this.unsupported(`"${this.peek()}" here`);
      this.pos++;
    }
  }

  private parseAlt(): Rx {
    const alts = [this.parseSeq(false)];
    while (this.peek() === '|') {
      this.pos++;
      alts.push(this.parseSeq(false));
    }
    return alts.length === 1 ? alts[0] : { k: 'alt', alts };
  }

  private parseSeq(top: boolean): Rx {
    const items: Rx[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '|' || c === ')') break;
      if (c === '$' && top && (this.peek(1) === undefined || this.peek(1) === '|')) break;
      if (c === '^' || c === '$') throw this.unsupported(`the anchor "${c}" inside the pattern`);
      items.push(this.parseQuantified(this.parseAtom()));
    }
    return items.length === 1 ? items[0] : { k: 'seq', items };
  }

  private parseAtom(): Rx {
    const c = this.cps[this.pos++];
    if (c === '(') {
      if (this.peek() === '?') {
        if (this.peek(1) === ':') this.pos += 2;
        else if (this.peek(1) === '<' && this.peek(2) !== '=' && this.peek(2) !== '!') {
          while (this.peek() !== '>') this.pos++;
          this.pos++;
        } else throw this.unsupported('a lookaround or group modifier "(?"');
      }
      const inner = this.parseAlt();
      if (this.cps[this.pos++] !== ')') throw this.unsupported('an unbalanced group');
      return inner;
    }
    if (c === '[') return { k: 'set', set: this.parseClass() };
    if (c === '.') return { k: 'set', set: complementSet(LINE_TERMINATORS) };
    if (c === '\\') return { k: 'set', set: this.parseEscape(false) };
    if ('*+?{'.includes(c)) throw this.unsupported(`a quantifier "${c}" with nothing to repeat`);
    return { k: 'set', set: charSet(c) };
  }

  private parseQuantified(node: Rx): Rx {
    let min: number;
    let max: number | null;
    const c = this.peek();
    if (c === '*' || c === '+' || c === '?') {
      this.pos++;
      [min, max] = c === '*' ? [0, null] : c === '+' ? [1, null] : [0, 1];
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.cps.slice(this.pos, this.pos + 24).join(''));
      if (!m) throw this.unsupported('a "{" that is not a quantifier');
      this.pos += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? null : Number(m[3]);
      if (min > MAX_PATTERN_REPEAT || (max !== null && max > MAX_PATTERN_REPEAT)) {
        throw this.unsupported(`a repetition count above ${MAX_PATTERN_REPEAT}`);
      }
    } else return node;
    if (this.peek() === '?') this.pos++; // lazy: same language
    if (max === null && nullable(node)) throw this.unsupported('an unbounded repetition of something that can match nothing');
    return { k: 'rep', node, min, max };
  }

  /** After `[`: the class up to and including `]`. */
  private parseClass(): CodePointSet {
    const negate = this.peek() === '^';
    if (negate) this.pos++;
    const parts: CodePointSet[] = [];
    while (this.peek() !== ']') {
      const lo = this.classAtom();
      if (this.peek() === '-' && this.peek(1) !== ']' && lo.length === 1 && lo[0][0] === lo[0][1]) {
        this.pos++;
        const hi = this.classAtom();
        parts.push(rangeSet(lo[0][0], hi[0][0]));
      } else parts.push(lo);
    }
    this.pos++;
    const set = unionSets(...parts);
    return negate ? complementSet(set) : set;
  }

  private classAtom(): CodePointSet {
    const c = this.cps[this.pos++];
    if (c === '\\') return this.parseEscape(true);
    return charSet(c);
  }

  /** After `\`. */
  private parseEscape(inClass: boolean): CodePointSet {
    const c = this.cps[this.pos++];
    switch (c) {
      case 'd':
        return DIGITS;
      case 'D':
        return complementSet(DIGITS);
      case 'w':
        return WORD;
      case 'W':
        return complementSet(WORD);
      case 's':
        return SPACE;
      case 'S':
        return complementSet(SPACE);
      case 't':
        return charSet('\t');
      case 'n':
        return charSet('\n');
      case 'r':
        return charSet('\r');
      case 'v':
        return charSet('\v');
      case 'f':
        return charSet('\f');
      case '0':
        return charSet('\0');
      case 'b':
        if (inClass) return charSet('\b');
        throw this.unsupported('a word boundary "\\b"');
      case 'x':
      case 'u': {
        const rest = this.cps.slice(this.pos, this.pos + 12).join('');
        const m = c === 'x' ? /^[0-9a-fA-F]{2}/.exec(rest) : /^(\{[0-9a-fA-F]+\}|[0-9a-fA-F]{4})/.exec(rest);
        if (!m) throw this.unsupported(`the escape "\\${c}"`);
        this.pos += m[0].length;
        let cp = parseInt(m[0].replace(/[{}]/g, ''), 16);
        // Under the u flag an escaped surrogate pair is the one code point it encodes.
        const low = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(this.cps.slice(this.pos, this.pos + 6).join(''));
        if (cp >= 0xd800 && cp <= 0xdbff && m[0].length === 4 && low) {
          this.pos += 6;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (parseInt(low[1], 16) - 0xdc00);
        }
        if (cp >= 0xd800 && cp <= 0xdfff) throw this.unsupported('a lone surrogate escape');
        return rangeSet(cp, cp);
      }
      default:
        if (c !== undefined && SYNTAX.includes(c)) return charSet(c);
        throw this.unsupported(`the escape "\\${c ?? ''}"`);
    }
  }
}

function emit(j: JsonText, node: Rx, where: string): Alternative {
  switch (node.k) {
    case 'set':
      if (node.set.length === 0) throw inputError(`${where}: the pattern has a character class that matches nothing`);
      return [ref(j.charIn(node.set))];
    case 'any':
      return [ref(j.stringChar())];
    case 'seq':
      return node.items.flatMap((n) => emit(j, n, where));
    case 'alt':
      return [ref(j.b.rule(node.alts.map((n) => emit(j, n, where))))];
    case 'rep':
      return j.repeat(emit(j, node.node, where), node.min, node.max);
  }
}

/**
 * The grammar of the string content (without quotes) whose decoded text matches `pattern` anywhere, and
 * has `length` code points when given (see pattern-length.ts).
 */
export function patternContent(
  j: JsonText,
  pattern: string,
  where: string,
  length?: { min: number; max: number | null },
): number {
  try {
    new RegExp(pattern, 'u');
  } catch (e) {
    throw inputError(`${where}: ${JSON.stringify(pattern)} is not a valid regular expression (${(e as Error).message})`);
  }
  const anyChars: Rx = { k: 'rep', node: { k: 'any' }, min: 0, max: null };
  let branches = new PatternParser(pattern, where)
    .parseTop()
    .map(({ node, start, end }): Rx => ({
      k: 'seq',
      items: [...(start ? [] : [anyChars]), ...(node.k === 'seq' ? node.items : [node]), ...(end ? [] : [anyChars])],
    }));
  if (length) branches = fitLength(branches, length.min, length.max, where);
  return j.b.rule(branches.map((b) => emit(j, b, where)));
}
