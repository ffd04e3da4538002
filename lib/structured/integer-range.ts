/**
 * Decimal integers within bounds as grammar rules: a digit automaton that splits [lo, hi] by digit count
 * and then by leading digit, so every sentence is an integer in range written without leading zeros
 * (and without `-0`). Bounds are BigInts; null means unbounded on that side.
 * @internal
 * @module
 */
import { type Alternative, type GrammarBuilder, cls, lit, ref } from './grammar-builder.js';
import { rangeSet } from './code-point-set.js';

function digitClass(lo: number, hi: number): Alternative {
  return lo === hi ? [lit(String(lo))] : [cls(rangeSet(0x30 + lo, 0x30 + hi))];
}

export class IntegerRanges {
  private tail: number | undefined;

  constructor(private readonly b: GrammarBuilder) {}

  /** Any number of digits. */
  private anyTail(): number {
    if (this.tail === undefined) {
      this.tail = this.b.reserve();
      this.b.define(this.tail, [[], [...digitClass(0, 9), ref(this.tail)]]);
    }
    return this.tail;
  }

  /** Exactly `n` digits, any. */
  private anyDigits(n: number): Alternative {
    return Array.from({ length: n }, () => digitClass(0, 9)[0]);
  }

  /** Digit strings of x's length between x and y inclusive (x <= y, leading zeros allowed here). */
  private fixedLength(x: string, y: string): Alternative[] {
    if (x.length === 0) return [[]];
    if (/^0*$/.test(x) && /^9*$/.test(y)) return [this.anyDigits(x.length)];
    const x0 = Number(x[0]);
    const y0 = Number(y[0]);
    const xr = x.slice(1);
    const yr = y.slice(1);
    if (x0 === y0) return [[lit(x[0]), ...this.sub(xr, yr)]];
    const alts: Alternative[] = [];
    let midLo = x0 + 1;
    let midHi = y0 - 1;
    if (/^0*$/.test(xr)) midLo = x0;
    else alts.push([lit(x[0]), ...this.sub(xr, '9'.repeat(xr.length))]);
    if (/^9*$/.test(yr)) midHi = y0;
    if (midLo <= midHi) alts.push([...digitClass(midLo, midHi), ...this.anyDigits(xr.length)]);
    if (!/^9*$/.test(yr)) alts.push([lit(y[0]), ...this.sub('0'.repeat(yr.length), yr)]);
    return alts;
  }

  private sub(x: string, y: string): Alternative {
    const alts = this.fixedLength(x, y);
    return alts.length === 1 ? alts[0] : [ref(this.b.rule(alts))];
  }

  /** Alternatives for the non-negative integers in [lo, hi] (hi null: unbounded), 0 <= lo. */
  private nonNegative(lo: bigint, hi: bigint | null): Alternative[] {
    const alts: Alternative[] = [];
    const loLen = lo.toString().length;
    const lastLen = hi === null ? loLen : hi.toString().length;
    for (let len = loLen; len <= lastLen; len++) {
      const first = len === 1 ? 0n : 10n ** BigInt(len - 1);
      const last = 10n ** BigInt(len) - 1n;
      const a = lo > first ? lo : first;
      const z = hi !== null && hi < last ? hi : last;
      if (a <= z) alts.push(...this.fixedLength(a.toString(), z.toString()));
    }
    if (hi === null) {
      alts.push([...digitClass(1, 9), ...this.anyDigits(loLen), ref(this.anyTail())]);
    }
    return alts;
  }

  /** A rule for the integers in [lo, hi]; the caller ensures lo <= hi when both are set. */
  rule(lo: bigint | null, hi: bigint | null): number {
    const alts: Alternative[] = [];
    // Negative part: "-" then n for n in [max(1, -hi), -lo].
    if (lo === null || lo < 0n) {
      const nLo = hi !== null && -hi > 1n ? -hi : 1n;
      const nHi = lo === null ? null : -lo;
      if (nHi === null || nLo <= nHi) {
        const body = this.nonNegative(nLo, nHi);
        alts.push([lit('-'), ref(this.b.rule(body))]);
      }
    }
    if (hi === null || hi >= 0n) alts.push(...this.nonNegative(lo !== null && lo > 0n ? lo : 0n, hi));
    return this.b.rule(alts);
  }
}
