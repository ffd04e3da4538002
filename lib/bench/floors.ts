/**
 * The floors a benchmark compares its timings with, measured in the running process: the memory
 * read bandwidth (bounds decode, which streams every weight once per token) and the compute peak
 * of the ISA a precision mode runs on (bounds prefill and the vision tower).
 * @internal
 * @module
 */
import { native } from '../native/binding.js';

/** The read buffer: larger than the last-level cache (480 MiB on the Sapphire Rapids VMs), so reads come from DRAM. */
export const SPILL_BYTES = 1024 * 2 ** 20;

/** A compute-peak probe of native/tests/bench_peak.cpp. */
export type PeakKind = 'fma32' | 'dpbf16' | 'dpbusd' | 'amx-bf16';

/** The probe each matmul variant's ISA is measured against. */
export const PEAK_OF: Record<string, PeakKind> = { avx512: 'fma32', avx512bf16: 'dpbf16', amx: 'amx-bf16', q_avx512vnni: 'dpbusd' };

/** Rounds per probe call at which one call takes tens of milliseconds (AMX does far more per round). */
export const PEAK_ROUNDS: Record<PeakKind, number> = { fma32: 20_000_000, dpbf16: 20_000_000, dpbusd: 20_000_000, 'amx-bf16': 2_000_000 };

/** GB/s reading `bytes` of owned memory on every compute thread, once per repeat. */
export async function readBandwidths(repeats: number, bytes: number = SPILL_BYTES): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < repeats; r++) out.push(bytes / (await native.benchRead({ bytes, iters: 3 })) / 1e9);
  return out;
}

/** GFLOP/s of one peak probe on every compute thread, once per repeat (`scale` shortens each call). */
export async function peakGflops(kind: PeakKind, repeats: number, scale = 1): Promise<number[]> {
  const out: number[] = [];
  const rounds = Math.max(1, Math.round(PEAK_ROUNDS[kind] * scale));
  for (let r = 0; r < repeats; r++) out.push(await native.benchPeak({ kind, rounds }));
  return out;
}

/**
 * The peak probe of the matmul that prefill and the vision tower run under a precision mode:
 * fma32 for 'exact'; under 'fast' the bf16 kernel chosen on this CPU (AMX, AVX512-BF16), else fma32.
 */
export function peakKindFor(precision: 'exact' | 'fast'): PeakKind {
  if (precision === 'exact') return 'fma32';
  const chosen = native.info().ops.matmul_bf16?.chosen;
  return (chosen !== undefined && PEAK_OF[chosen]) || 'fma32';
}
