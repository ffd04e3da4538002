/**
 * The peer benchmark's one table: each line a qwenvl number next to llama.cpp's (median and range
 * of the interleaved samples), their ratio, issue 9's target, and PASS or MISS.
 * @module
 */
import { median as sharesMedian } from '../../lib/bench/shares.js';

/** Samples of one measurement, with the % of the machine other processes used during each. */
export interface Series {
  values: number[];
  foreign: number[];
}

export const series = (): Series => ({ values: [], foreign: [] });

/** The median (upper middle of an even count, a measured sample); NaN for none. */
export const median = (xs: readonly number[]): number => (xs.length === 0 ? NaN : sharesMedian(xs));

/** One line: `ours` and `theirs` are either rates (higher is better) or seconds/bytes (lower is better). */
export interface Row {
  what: string;
  unit: string;
  ours: Series | null;
  theirs: Series | null;
  /** ours/theirs for rates, theirs/ours for times: above 1 = qwenvl ahead. Given for rows with no peer. */
  ratio?: number;
  target: string;
  /** Whether the target holds; null = informational line. */
  pass: boolean | null;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function cell(s: Series | null): string {
  if (!s || s.values.length === 0) return '—';
  const lo = Math.min(...s.values), hi = Math.max(...s.values);
  return s.values.length === 1 ? fmt(s.values[0]) : `${fmt(median(s.values))} (${fmt(lo)}–${fmt(hi)})`;
}

/** Renders rows as an aligned plain-text table. */
export function renderTable(rows: Row[]): string {
  const head = ['measure', 'unit', 'qwenvl med (min–max)', 'llama.cpp med (min–max)', 'ratio', 'target', ''];
  const body = rows.map((r) => [
    r.what,
    r.unit,
    cell(r.ours),
    cell(r.theirs),
    r.ratio === undefined || !Number.isFinite(r.ratio) ? '—' : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.pass === null ? '' : r.pass ? 'PASS' : 'MISS',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i < 2 || i >= 5 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** ours/theirs of two rate series (medians). */
export const rateRatio = (ours: Series, theirs: Series): number => median(ours.values) / median(theirs.values);
/** theirs/ours of two time series (medians). */
export const timeRatio = (ours: Series, theirs: Series): number => median(theirs.values) / median(ours.values);

/** Median % of the machine other processes used, over every sample of the series given. */
export function foreignSummary(all: Series[]): string {
  const f = all.flatMap((s) => s.foreign).filter(Number.isFinite);
  if (f.length === 0) return 'unknown';
  return `median ${median(f).toFixed(0)}%, max ${Math.max(...f).toFixed(0)}% of the machine`;
}
