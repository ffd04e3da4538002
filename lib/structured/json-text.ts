/**
 * The grammar of JSON text pieces that do not depend on a schema: bounded whitespace, strings (whole or of
 * bounded length), numbers, integers and any JSON value. One instance per grammar being built, so each
 * piece becomes one shared rule.
 *
 * Text policy (what structured output lets a model write):
 * - Whitespace between tokens is nothing, one space, or a newline followed by at most
 *   {@link WS_MAX_INDENT} spaces or tabs: pretty-printed JSON to a fair depth fits, yet a model cannot
 *   emit whitespace forever. No whitespace before or after the whole value.
 * - Strings: any code point except `"`, `\` and the controls U+0000-U+001F written raw, or the JSON
 *   escapes `\" \\ \/ \b \f \n \r \t` and `\uXXXX`. A `\u` escape names a non-surrogate code point, or two
 *   of them form a valid surrogate pair: every escape decodes to exactly one code point, which is what
 *   `minLength`/`maxLength` count.
 * - Numbers follow JSON's grammar (no leading zeros, no `+`, no bare `.`) with at most
 *   {@link MAX_INTEGER_DIGITS} integer digits and two exponent digits; integers are written without
 *   fraction or exponent, and without `-0`.
 * @internal
 * @module
 */
import { type Alternative, type GrammarBuilder, cls, lit, ref } from './grammar-builder.js';
import { type CodePointSet, charSet, intersectSets, normalizeSet, rangeSet, unionSets } from './code-point-set.js';

/**
 * The most digits of an integer part (a bound's own digits aside): with exponents of at most two digits,
 * every number written parses to a finite double (1e999 or a 400-digit integer would be Infinity).
 */
export const MAX_INTEGER_DIGITS = 200;

/** The most spaces/tabs after a newline in one stretch of whitespace. */
export const WS_MAX_INDENT = 32;

/** Code points a JSON string holds unescaped: all but `"`, `\` and the controls. */
export const RAW_STRING_CHARS: CodePointSet = normalizeSet([
  [0x20, 0x21],
  [0x23, 0x5b],
  [0x5d, 0x10ffff],
]);
const NOT_RAW: CodePointSet = normalizeSet([
  [0, 0x1f],
  [0x22, 0x22],
  [0x5c, 0x5c],
]);

const DIGIT = rangeSet(0x30, 0x39);
const HEX = unionSets(DIGIT, charSet('abcdefABCDEF'));

/** The escape JSON.stringify writes for a code point that cannot appear raw in a string. */
export function escapeOf(cp: number): string {
  return JSON.stringify(String.fromCodePoint(cp)).slice(1, -1);
}

export class JsonText {
  private readonly memo = new Map<string, number>();

  constructor(readonly b: GrammarBuilder) {}

  private once(key: string, make: () => number): number {
    let r = this.memo.get(key);
    if (r === undefined) {
      r = make();
      this.memo.set(key, r);
    }
    return r;
  }

  /** `x` repeated 0 or more times (right recursive). */
  star(item: Alternative): number {
    const r = this.b.reserve();
    this.b.define(r, [[], [...item, ref(r)]]);
    return r;
  }

  /** `x` repeated at most `n` times: a chain of n optional steps. */
  upTo(item: Alternative, n: number): number {
    let r = this.b.rule([[]]);
    for (let i = 0; i < n; i++) r = this.b.rule([[], [...item, ref(r)]]);
    return r;
  }

  /** `item` repeated between `min` and `max` (null: unbounded) times. */
  repeat(item: Alternative, min: number, max: number | null): Alternative {
    const out: Alternative = [];
    for (let i = 0; i < min; i++) out.push(...item);
    out.push(ref(max === null ? this.star(item) : this.upTo(item, max - min)));
    return out;
  }

  ws(): number {
    return this.once('ws', () => {
      const indent = this.upTo([cls(charSet(' \t'))], WS_MAX_INDENT);
      return this.b.rule([[], [lit(' ')], [lit('\n'), ref(indent)]]);
    });
  }

  /** Any number of digits (fractions). */
  digits(): number {
    return this.once('digits', () => this.star([cls(DIGIT)]));
  }

  /** The digits after an integer's first: at most MAX_INTEGER_DIGITS - 1. */
  moreIntegerDigits(): number {
    return this.once('intDigits', () => this.upTo([cls(DIGIT)], MAX_INTEGER_DIGITS - 1));
  }

  /** One character of string content, as the JSON text writes it. */
  stringChar(): number {
    return this.once('char', () => {
      const hex = cls(HEX);
      const nonSurrogateHex4: Alternative[] = [
        [cls(unionSets(DIGIT, charSet('abcABCefEF'))), hex, hex, hex],
        [cls(charSet('dD')), cls(rangeSet(0x30, 0x37)), hex, hex],
      ];
      const escape = this.b.rule([
        [cls(charSet('"\\/bfnrt'))],
        ...nonSurrogateHex4.map((a) => [lit('u'), ...a]),
        [lit('u'), cls(charSet('dD')), cls(charSet('89abAB')), hex, hex, lit('\\u'), cls(charSet('dD')), cls(charSet('cdefCDEF')), hex, hex],
      ]);
      return this.b.rule([[cls(NOT_RAW, true)], [lit('\\'), ref(escape)]]);
    });
  }

  /** Any string content (between the quotes). */
  content(): number {
    return this.once('content', () => this.star([ref(this.stringChar())]));
  }

  /** Any string, quotes included. */
  string(): number {
    return this.once('string', () => this.b.rule([[lit('"'), ref(this.content()), lit('"')]]));
  }

  /** A string of `min` to `max` (null: unbounded) code points, quotes included. */
  stringOfLength(min: number, max: number | null): number {
    if (min === 0 && max === null) return this.string();
    return this.once(`string${min},${max}`, () =>
      this.b.rule([[lit('"'), ...this.repeat([ref(this.stringChar())], min, max), lit('"')]]),
    );
  }

  /** One code point of `set` as a JSON string writes it: raw where allowed, else its usual escape. */
  charIn(set: CodePointSet): number {
    return this.once(`in${JSON.stringify(set)}`, () => {
      const rawSet = intersectSets(set, RAW_STRING_CHARS);
      const alts: Alternative[] = [];
      if (rawSet.length > 0) alts.push([cls(rawSet)]);
      for (const [lo, hi] of set) {
        for (let cp = lo; cp <= Math.min(hi, 0x5c); cp++) {
          if (cp < 0x20 || cp === 0x22 || cp === 0x5c) alts.push([lit(escapeOf(cp))]);
        }
      }
      return this.b.rule(alts);
    });
  }

  number(): number {
    return this.once('number', () => {
      const int = this.b.rule([[lit('0')], [cls(rangeSet(0x31, 0x39)), ref(this.moreIntegerDigits())]]);
      const frac = this.b.rule([[], [lit('.'), cls(DIGIT), ref(this.digits())]]);
      const sign = ref(this.b.rule([[], [cls(charSet('+-'))]]));
      const exp = this.b.rule([[], [cls(charSet('eE')), sign, cls(DIGIT)], [cls(charSet('eE')), sign, cls(DIGIT), cls(DIGIT)]]);
      return this.b.rule([[ref(int), ref(frac), ref(exp)], [lit('-'), ref(int), ref(frac), ref(exp)]]);
    });
  }

  integer(): number {
    return this.once('integer', () => {
      const positive = [cls(rangeSet(0x31, 0x39)), ref(this.moreIntegerDigits())];
      return this.b.rule([[lit('0')], positive, [lit('-'), ...positive]]);
    });
  }

  /** `open ws (close | item ws ("," ws item ws)* close)`: the shape of arrays and objects of any length. */
  private anyLength(open: string, item: Alternative, close: string): number {
    const ws = ref(this.ws());
    const rest = this.b.reserve();
    this.b.define(rest, [[lit(close)], [lit(','), ws, ...item, ws, ref(rest)]]);
    return this.b.rule([[lit(open), ws, lit(close)], [lit(open), ws, ...item, ws, ref(rest)]]);
  }

  /** Any JSON value. */
  value(): number {
    const known = this.memo.get('value');
    if (known !== undefined) return known;
    const value = this.b.reserve();
    this.memo.set('value', value);
    const ws = ref(this.ws());
    const object = this.anyLength('{', [ref(this.string()), ws, lit(':'), ws, ref(value)], '}');
    const array = this.anyLength('[', [ref(value)], ']');
    this.memo.set('object', object);
    this.b.define(value, [
      [ref(object)],
      [ref(array)],
      [ref(this.string())],
      [ref(this.number())],
      [lit('true')],
      [lit('false')],
      [lit('null')],
    ]);
    return value;
  }

  /** Any JSON object. */
  object(): number {
    this.value();
    return this.memo.get('object')!;
  }
}
