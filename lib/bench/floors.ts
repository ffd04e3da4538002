/**
 * The floors a benchmark compares its timings with, measured in the running process: the memory
 * read bandwidth (bounds decode, which streams every weight once per token) and the compute peaks
 * of the kernels prefill and the vision tower run (their matrices' and their attention's).
 * @internal
 * @module
 */
import { native } from '../native/binding.js';

/** The read buffer: larger than the last-level cache (480 MiB on the Sapphire Rapids VMs), so reads come from DRAM. */
export const SPILL_BYTES = 1024 * 2 ** 20;

/** A compute-peak probe of native/tests/bench_peak.cpp (unsuffixed kinds are AVX-512's). */
export type PeakKind = 'fma32' | 'fma32-avx2' | 'muladd32-sse2' | 'dpbf16' | 'dpbusd' | 'dpbusd-avx2' | 'amx-bf16';

/** The probe each matmul variant's ISA is measured against. */
export const PEAK_OF: Record<string, PeakKind> = {
  generic: 'muladd32-sse2',
  avx2: 'fma32-avx2',
  avx512: 'fma32',
  avx512bf16: 'dpbf16',
  'avx512bf16-tiles': 'dpbf16',
  amx: 'amx-bf16',
  q_avx2: 'dpbusd-avx2',
  q_avx512vnni: 'dpbusd',
};

/** Rounds per probe call at which one call takes tens of milliseconds (AMX does far more per round). */
export const PEAK_ROUNDS: Record<PeakKind, number> = {
  'muladd32-sse2': 20_000_000,
  'fma32-avx2': 20_000_000,
  fma32: 20_000_000,
  'dpbusd-avx2': 20_000_000,
  dpbusd: 20_000_000,
  dpbf16: 20_000_000,
  'amx-bf16': 2_000_000,
};

/** Every probe (PEAK_ROUNDS names each), in the order `npm run bench` lists them. */
export const PEAK_KINDS = Object.keys(PEAK_ROUNDS) as readonly PeakKind[];

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
 * The matmul variant that runs weights of `format` under a precision mode: under 'fast' the bf16
 * kernel where it takes the format (AMX, AVX512-BF16; on AMX also q8/q4, dequantized per panel),
 * otherwise the exact kernel chosen for it.
 */
function matmulVariant(precision: 'exact' | 'fast', format: 'bf16' | 'q8' | 'q4'): string | undefined {
  const i = native.info();
  const fast = precision === 'fast' ? i.fast.matmulByFormat[format] : null;
  return fast ?? i.ops.matmul?.chosenByFormat?.[format] ?? i.ops.matmul?.chosen;
}

/**
 * The peak probe of the bf16-weight matmul that prefill and the vision tower run under a precision
 * mode: under 'fast' the bf16 kernel chosen on this CPU (AMX, AVX512-BF16); otherwise, and under
 * 'exact', the f32 multiply-add of the ISA the bf16-weight matmul runs (AVX-512, AVX2 + FMA, else SSE2).
 */
export function peakKindFor(precision: 'exact' | 'fast'): PeakKind {
  const probe = (p: 'exact' | 'fast') => {
    const v = matmulVariant(p, 'bf16');
    return v === undefined ? undefined : PEAK_OF[v];
  };
  return probe(precision) ?? probe('exact') ?? 'muladd32-sse2';
}

/** The probe a stage's floor divides one kind of work by, and the kernel it stands for. */
export interface WorkPeak {
  kind: PeakKind;
  /** The variant that runs the work (`qwenvl info`'s name). */
  variant: string;
  /** The variant has no probe of its own: `kind` is the f32 multiply-add of the ISA exact runs on. */
  standIn: boolean;
}

function workPeak(variant: string | null | undefined): WorkPeak {
  const kind = variant ? PEAK_OF[variant] : undefined;
  return kind ? { kind, variant: variant!, standIn: false } : { kind: peakKindFor('exact'), variant: variant ?? 'none', standIn: true };
}

/** The probe of the matmul that runs weights of `format` under a precision mode (the int8 dot for q8/q4 unless AMX takes them under 'fast'). */
export function matmulPeak(precision: 'exact' | 'fast', format: 'bf16' | 'q8' | 'q4'): WorkPeak {
  return workPeak(matmulVariant(precision, format));
}

/** The probe of the attention kernel prefill and the vision tower run under a precision mode. */
export function attentionPeak(precision: 'exact' | 'fast'): WorkPeak {
  const i = native.info();
  const fast = precision === 'fast' ? i.fast.attention : null;
  return workPeak(fast ?? i.ops.attention?.chosen);
}
