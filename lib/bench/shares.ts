/**
 * The split of profiled passes per op family, and its one-line form: pure arithmetic on the
 * profiles (no native code), so the CLI can format a report without loading the addon.
 * @internal
 * @module
 */
import type { NativeStepProfile } from '../native/binding.js';

/** One op family's part of a pass. */
export interface OpShare {
  op: string;
  /** Wall time inside the family's entry points, seconds. */
  seconds: number;
  /** seconds / the pass's wall time. */
  share: number;
  calls: number;
}

/** The median of a non-empty list (of an even count, the upper middle one). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * The split of a pass, or of several like ones (decode steps) by medians: its wall time and every
 * op family, largest first. What the families leave of `seconds` ran outside the kernels.
 */
export function opShares(passes: readonly NativeStepProfile[]): { seconds: number; ops: OpShare[] } {
  const seconds = median(passes.map((p) => p.stepNs)) / 1e9;
  const families = [...new Set(passes.flatMap((p) => Object.keys(p.ops)))];
  const ops = families
    .map((op) => {
      const s = median(passes.map((p) => p.ops[op]?.ns ?? 0)) / 1e9;
      return { op, seconds: s, share: seconds > 0 ? s / seconds : 0, calls: median(passes.map((p) => p.ops[op]?.calls ?? 0)) };
    })
    .sort((a, b) => b.seconds - a.seconds);
  return { seconds, ops };
}

/** "12.3 ms: matmul 82% (10.1 ms), attention 9% (1.1 ms); outside ops 3%", families under 1% left out. */
export function formatShares(split: { seconds: number; ops: readonly OpShare[] }): string {
  const ms = (s: number) => (s >= 1 ? `${s.toFixed(2)} s` : s >= 1e-3 ? `${(s * 1e3).toFixed(1)} ms` : `${(s * 1e6).toFixed(0)} µs`);
  const inside = split.ops.reduce((a, o) => a + o.seconds, 0);
  const parts = split.ops.filter((o) => o.share >= 0.01).map((o) => `${o.op} ${(100 * o.share).toFixed(0)}% (${ms(o.seconds)})`);
  const outside = split.seconds > 0 ? (100 * (split.seconds - inside)) / split.seconds : 0;
  return `${ms(split.seconds)}: ${parts.join(', ')}; outside ops ${outside.toFixed(0)}%`;
}
