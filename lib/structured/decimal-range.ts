/**
 * Decimal numbers within bounds as grammar rules: a digit automaton that splits a range by digit count
 * and then by leading digit. `rule(lo, hi, frac)` is the numbers N / 10^frac for the integers N in
 * [lo, hi], written with exactly `frac` fraction digits (none when 0), no leading zeros (one "0" before
 * the point when the integer part is zero) and no `-0`. Bounds are BigInts; null means unbounded (only
 * for frac 0: integers, then of at most MAX_INTEGER_DIGITS digits).
 * @internal
 * @module
 */
import { type Alternative, type GrammarBuilder, cls, lit, ref } from './grammar-builder.js';
import { rangeSet } from './code-point-set.js';
import { MAX_INTEGER_DIGITS } from './json-text.js';

function digitClass(lo: number, hi: number): Alternative {
  return lo === hi ? [lit(String(lo))] : [cls(rangeSet(0x30 + lo, 0x30 + hi))];
}

const allZeros = (s: string) => /^0*$/.test(s);
const allNines = (s: string) => /^9*$/.test(s);

export class DecimalRanges {
  /** tails[k]: at most k more digits. */
  private readonly tails: number[] = [];

  constructor(private readonly b: GrammarBuilder) {}

  /** At most `k` more digits. */
  private tail(k: number): number {
    if (this.tails.length === 0) this.tails.push(this.b.rule([[]]));
    while (this.tails.length <= k) this.tails.push(this.b.rule([[], [...digitClass(0, 9), ref(this.tails[this.tails.length - 1])]]));
    return this.tails[k];
  }

  /** The point, when `remaining` digits are left and they are the fraction. */
  private point(remaining: number, frac: number): Alternative {
    return frac > 0 && remaining === frac ? [lit('.')] : [];
  }

  /** Exactly `n` digits, any (with the point where it falls). */
  private anyDigits(n: number, frac: number): Alternative {
    const out: Alternative = [];
    for (let left = n; left > 0; left--) out.push(...this.point(left, frac), ...digitClass(0, 9));
    return out;
  }

  /** Digit strings of x's length between x and y inclusive (leading zeros allowed here). */
  private fixedLength(x: string, y: string, frac: number): Alternative[] {
    if (x.length === 0) return [[]];
    const dot = this.point(x.length, frac);
    if (allZeros(x) && allNines(y)) return [this.anyDigits(x.length, frac)];
    const x0 = Number(x[0]);
    const y0 = Number(y[0]);
    const xr = x.slice(1);
    const yr = y.slice(1);
    if (x0 === y0) return [[...dot, lit(x[0]), ...this.sub(xr, yr, frac)]];
    const alts: Alternative[] = [];
    let midLo = x0 + 1;
    let midHi = y0 - 1;
    if (allZeros(xr)) midLo = x0;
    else alts.push([...dot, lit(x[0]), ...this.sub(xr, '9'.repeat(xr.length), frac)]);
    if (allNines(yr)) midHi = y0;
    if (midLo <= midHi) alts.push([...dot, ...digitClass(midLo, midHi), ...this.anyDigits(xr.length, frac)]);
    if (!allNines(yr)) alts.push([...dot, lit(y[0]), ...this.sub('0'.repeat(yr.length), yr, frac)]);
    return alts;
  }

  private sub(x: string, y: string, frac: number): Alternative {
    const alts = this.fixedLength(x, y, frac);
    return alts.length === 1 ? alts[0] : [ref(this.b.rule(alts))];
  }

  /** Alternatives for N in [lo, hi] (hi null: unbounded, frac 0 only), 0 <= lo. */
  private nonNegative(lo: bigint, hi: bigint | null, frac: number): Alternative[] {
    const alts: Alternative[] = [];
    // The shortest text has frac + 1 digits ("0.xyz"): there, leading zeros pad the fraction.
    const minLen = frac + 1;
    const loLen = Math.max(minLen, lo.toString().length);
    const lastLen = hi === null ? loLen : Math.max(minLen, hi.toString().length);
    for (let len = loLen; len <= lastLen; len++) {
      const first = len === minLen ? 0n : 10n ** BigInt(len - 1);
      const last = 10n ** BigInt(len) - 1n;
      const a = lo > first ? lo : first;
      const z = hi !== null && hi < last ? hi : last;
      if (a <= z) alts.push(...this.fixedLength(a.toString().padStart(len, '0'), z.toString().padStart(len, '0'), frac));
    }
    // Unbounded above: longer integers, up to MAX_INTEGER_DIGITS digits (so they stay finite doubles).
    if (hi === null && loLen < MAX_INTEGER_DIGITS) {
      alts.push([...digitClass(1, 9), ...this.anyDigits(loLen, 0), ref(this.tail(MAX_INTEGER_DIGITS - loLen - 1))]);
    }
    return alts;
  }

  /** A rule for N / 10^frac, N in [lo, hi], or null when the range is empty. */
  rule(lo: bigint | null, hi: bigint | null, frac = 0): number | null {
    const alts: Alternative[] = [];
    // Negative part: "-" then n for n in [max(1, -hi), -lo].
    if (lo === null || lo < 0n) {
      const nLo = hi !== null && -hi > 1n ? -hi : 1n;
      const nHi = lo === null ? null : -lo;
      if (nHi === null || nLo <= nHi) alts.push([lit('-'), ref(this.b.rule(this.nonNegative(nLo, nHi, frac)))]);
    }
    if (hi === null || hi >= 0n) {
      const from = lo !== null && lo > 0n ? lo : 0n;
      if (hi === null || from <= hi) alts.push(...this.nonNegative(from, hi, frac));
    }
    return alts.length === 0 ? null : this.b.rule(alts);
  }
}
