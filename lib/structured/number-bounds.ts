/**
 * The bounds of a numeric schema (`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, and the
 * int32/int64 formats) as exact decimals, and the integers N whose N / 10^f lie within them. Exact
 * arithmetic, because the schema's numbers are doubles whose decimal text is what a model writes.
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import { describe } from '../validate.js';
import { type SchemaObject, pointer } from './schema-keywords.js';

/** A bound: the exact value num / den (den a positive power of ten), and whether it is excluded. */
export interface Bound {
  num: bigint;
  den: bigint;
  exclusive: boolean;
}

/** Number formats that ask for integers in a range (ajv-formats' int32/int64). */
export const INTEGER_FORMATS: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
};

export function isIntegerFormat(format: unknown): boolean {
  return typeof format === 'string' && Object.hasOwn(INTEGER_FORMATS, format);
}

/** A finite JS number as an exact fraction, from its shortest decimal text. */
function exactDecimal(x: number): { num: bigint; den: bigint } {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(x))!;
  const digits = BigInt(m[2] + (m[3] ?? ''));
  const exp = -(m[3]?.length ?? 0) + Number(m[4] ?? 0);
  const sign = m[1] === '-' ? -1n : 1n;
  if (exp >= 0) return { num: sign * digits * 10n ** BigInt(exp), den: 1n };
  return { num: sign * digits, den: 10n ** BigInt(-exp) };
}

function floorDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d !== 0n && n < 0n ? q - 1n : q;
}

/** a - b as a sign, for exact fractions. */
function compare(a: Bound, b: Bound): number {
  const d = a.num * b.den - b.num * a.den;
  return d > 0n ? 1 : d < 0n ? -1 : 0;
}

/** The tightest lower and upper bounds of a numeric schema (null: none). */
export function numberBounds(s: SchemaObject, path: string): { lo: Bound | null; hi: Bound | null } {
  const read = (key: string, exclusive: boolean): Bound[] => {
    const v = s[key];
    if (v === undefined) return [];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw inputError(`${pointer(path, key)}: expected a finite number, got ${describe(v)}`);
    return [{ ...exactDecimal(v), exclusive }];
  };
  const lows = [...read('minimum', false), ...read('exclusiveMinimum', true)];
  const highs = [...read('maximum', false), ...read('exclusiveMaximum', true)];
  if (isIntegerFormat(s.format)) {
    const [lo, hi] = INTEGER_FORMATS[s.format as string];
    lows.push({ num: lo, den: 1n, exclusive: false });
    highs.push({ num: hi, den: 1n, exclusive: false });
  }
  // The tighter bound wins; at a tie the exclusive one.
  const tightest = (list: Bound[], sign: number) =>
    list.reduce<Bound | null>((best, b) => {
      if (best === null) return b;
      const c = compare(b, best) * sign;
      return c > 0 || (c === 0 && b.exclusive) ? b : best;
    }, null);
  return { lo: tightest(lows, 1), hi: tightest(highs, -1) };
}

/** The integers N with N / 10^f within the bounds: [lo, hi], null where unbounded. */
export function scaledRange(bounds: { lo: Bound | null; hi: Bound | null }, f: number): [bigint | null, bigint | null] {
  const scale = 10n ** BigInt(f);
  let lo: bigint | null = null;
  let hi: bigint | null = null;
  if (bounds.lo !== null) {
    const n = bounds.lo.num * scale;
    const d = bounds.lo.den;
    lo = bounds.lo.exclusive ? floorDiv(n, d) + 1n : -floorDiv(-n, d);
  }
  if (bounds.hi !== null) {
    const n = bounds.hi.num * scale;
    const d = bounds.hi.den;
    hi = bounds.hi.exclusive ? -floorDiv(-n, d) - 1n : floorDiv(n, d);
  }
  return [lo, hi];
}
