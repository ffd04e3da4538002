/**
 * The `ops` benchmark: GFLOP/s of every runnable matmul and attention variant on the shapes the
 * Qwen models run (Qwen2-VL-2B's MLP, its vision tower's qkv projection), each with its ratio
 * to the portable "generic" variant measured in the same process.
 *
 * Matmul weights are bf16, as checkpoints store them, plus f32 for decode. Each timing is the
 * best of a few calls after a warm-up, and the weights rotate through copies that together
 * exceed the last-level cache, so decode (M = 1) shows weight streaming from DRAM, and its
 * GB/s column is weight bytes read per second.
 * @module
 */
import { PEAK_KINDS, PEAK_OF, peakGflops, readBandwidths, SPILL_BYTES } from '../lib/bench/floors.js';
import { median } from '../lib/bench/shares.js';
import { native, type NativeSamplingParams } from '../lib/native/binding.js';

type WDtype = 'f32' | 'bf16' | 'f16' | 'fp8' | 'q8' | 'q4';

interface Row {
  op: string;
  shape: string;
  variant: string;
  seconds?: number;
  gflops?: number;
  gbps?: number;
  ratio?: number;
  /** GFLOP/s over the compute peak of the variant's ISA measured in this run (bf16 table). */
  ofPeak?: number;
  note?: string;
}

const MATMUL_SHAPES: [number, number][] = [
  [1536, 8960], // MLP up/gate
  [8960, 1536], // MLP down
  [1280, 3840], // vision qkv
];
const BASELINE = 'generic';

function available(op: string): string[] {
  const info = native.info().ops[op];
  return info ? info.variants.filter((v) => v.available).map((v) => v.name) : [];
}

// Enough calls for a stable best-of on a busy 2-core box, few enough to finish in minutes.
function matmulIters(M: number, variant: string): number {
  if (variant === 'reference') return 2;
  if (M === 1) return 20;
  if (M <= 16) return 8;
  return variant === BASELINE ? 2 : 4;
}

async function timeOrNote(run: () => Promise<number>): Promise<{ seconds?: number; note?: string }> {
  try {
    return { seconds: await run() };
  } catch (err) {
    return { note: `n/a (${(err as Error).message})` };
  }
}

/** `run` timed up to `repeats` times (other processes share the cores): every time, or the note of the first failure. */
async function timeRepeats(repeats: number, run: () => Promise<number>): Promise<{ times: number[]; note?: string }> {
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = await timeOrNote(run);
    if (t.seconds === undefined) return { times, note: t.note };
    times.push(t.seconds);
  }
  return { times };
}

async function matmulRows(): Promise<Row[]> {
  const variants = available('matmul');
  const rows: Row[] = [];
  const cases: { M: number; wDtype: WDtype }[] = [
    { M: 1, wDtype: 'bf16' },
    { M: 1, wDtype: 'f32' },
    { M: 16, wDtype: 'bf16' },
    { M: 512, wDtype: 'bf16' },
    // FP8 checkpoints' format (e4m3 + 128-block scales): only its own variants read it; their
    // ratio is to fp8_generic.
    { M: 1, wDtype: 'fp8' },
    { M: 512, wDtype: 'fp8' },
  ];
  for (const { M, wDtype } of cases) {
    for (const [K, N] of MATMUL_SHAPES) {
      const group: Row[] = [];
      // The scalar reference only at M = 1: at prefill sizes it would take minutes.
      const reads = (v: string) => native.info().ops.matmul?.variants.find((x) => x.name === v)?.formats?.includes(wDtype) ?? false;
      const names = variants.filter((v) => (v !== 'reference' || M === 1) && reads(v));
      for (const variant of names) {
        const iters = matmulIters(M, variant);
        const t = await timeOrNote(() => native.benchMatmul({ M, K, N, wDtype, variant, iters }));
        const row: Row = { op: 'matmul', shape: `M=${M} K=${K} N=${N} ${wDtype}`, variant, ...t };
        if (t.seconds !== undefined) {
          row.gflops = (2 * M * K * N) / t.seconds / 1e9;
          const bytes = wDtype === 'f32' ? 4 : wDtype === 'fp8' ? 1 + 4 / 128 : 2;
          if (M === 1) row.gbps = (K * N * bytes) / t.seconds / 1e9;
        }
        group.push(row);
      }
      rows.push(...withRatios(group, wDtype === 'fp8' ? 'fp8_generic' : BASELINE));
    }
  }
  return rows;
}

// Decode shapes of Qwen2-VL-2B as N x K: MLP down, MLP up/gate, the LM head.
const QUANT_SHAPES: [number, number][] = [
  [1536, 8960],
  [8960, 1536],
  [151936, 1536],
];
// Prefill shapes (N x K): attention output, MLP up/gate, MLP down.
const QUANT_PREFILL_SHAPES: [number, number][] = [
  [1536, 1536],
  [8960, 1536],
  [1536, 8960],
];
// The decode table adds the attention projections (q, o).
const DECODE_SHAPES: [number, number][] = [[1536, 1536], ...QUANT_SHAPES];
const QUANT_REPEATS = 3;

/**
 * Quantized weights (q8, q4) against bf16 as stored, each variant that reads them: decode (M = 1)
 * reports GB/s of weight bytes (scales and zero points included) as a share of the memory-read
 * floor measured in the same run; prefill (M = 16, 128, 512) GFLOP/s, the speed-up over the dense
 * exact kernel (the one matmul() picks for bf16 weights, f32 activations) at the same shape, and
 * the share of the int8 peak (vpdpbusd, or AVX2's vpmaddubsw step) measured in the same run. Each case
 * runs QUANT_REPEATS times (each a best-of) and reports the median and the spread (other
 * processes share the cores).
 */
async function quantRows(floorGbps: number[], peak: Map<string, { median: number }>): Promise<Row[]> {
  const info = native.info().ops.matmul;
  const denseExact = info?.chosenByFormat?.bf16 ?? 'avx512';
  const rows: Row[] = [];
  const floor = median(floorGbps);
  for (const M of [1, 16, 128, 512]) {
    for (const [N, K] of M === 1 ? QUANT_SHAPES : QUANT_PREFILL_SHAPES) {
      let dense: number | undefined;
      for (const wDtype of ['bf16', 'q8', 'q4'] as const) {
        // Prefill: the dense exact kernel and the kernel matmul() picks per format (the portable
        // and older ones take minutes there and say nothing new).
        const prefill = (name: string) => name === denseExact || name === info?.chosenByFormat?.[wDtype];
        const variants = (info?.variants ?? []).filter(
          (v) => v.available && v.name !== 'reference' && (v.formats ?? []).includes(wDtype) && (M === 1 || prefill(v.name)),
        );
        for (const v of variants) {
          const { times, note } = await timeRepeats(QUANT_REPEATS, () =>
            native.benchMatmul({ M, K, N, wDtype, variant: v.name, iters: M === 1 ? 10 : M <= 16 ? 4 : 2, spillBytes: SPILL_BYTES }),
          );
          const row: Row = { op: 'matmul', shape: `M=${M} N=${N} K=${K} ${wDtype}`, variant: v.name };
          if (note !== undefined) row.note = note;
          if (times.length > 0) {
            const s = median(times);
            row.seconds = s;
            row.gflops = (2 * M * K * N) / s / 1e9;
            const bytes = native.weightBytes(wDtype, N, K);
            if (M === 1) {
              row.gbps = bytes / s / 1e9;
              row.note = `${((100 * row.gbps) / floor).toFixed(0)}% of floor; spread ${spread(times)}`;
            } else {
              if (wDtype === 'bf16' && v.name === denseExact) dense = s;
              const p = peak.get(PEAK_OF[v.name] ?? '');
              row.note = [
                dense !== undefined ? `x${(dense / s).toFixed(2)} ${denseExact}/bf16` : '',
                p ? `${((100 * row.gflops) / p.median).toFixed(0)}% of ${PEAK_OF[v.name]} peak` : '',
                `spread ${spread(times)}`,
              ].filter((x) => x !== '').join('; ');
            }
          }
          rows.push(row);
        }
      }
    }
  }
  return rows;
}

// The int8-dot variants with an int8 GEMM (used from 8 rows): each against its own row tiles.
const GEMM_VARIANTS = ['q_avx2', 'q_avxvnni', 'q_avx512vnni'];

/**
 * Each int8-dot variant's GEMM against its own row tiles (benchMatmul rowTiles: the path it took
 * before it had a GEMM) at M = 8 (the threshold), 16, 64 and 512, prefill shapes, q8 and q4, in the
 * same process. The two are timed alternately QUANT_REPEATS times (each a best-of); x = median row
 * tiles time / median GEMM time, with each side's spread.
 */
async function gemmRows(): Promise<Row[]> {
  const rows: Row[] = [];
  const variants = available('matmul').filter((v) => GEMM_VARIANTS.includes(v));
  for (const M of [8, 16, 64, 512]) {
    for (const [N, K] of QUANT_PREFILL_SHAPES) {
      for (const wDtype of ['q8', 'q4'] as const) {
        for (const variant of variants) {
          const gemm: number[] = [];
          const tiles: number[] = [];
          let note: string | undefined;
          const iters = M <= 16 ? 4 : 2;
          // Few rows read the weights from DRAM, as a model's layers do; at 512 both are compute-bound.
          const spillBytes = M <= 16 ? SPILL_BYTES : 0;
          for (let r = 0; r < QUANT_REPEATS && note === undefined; r++) {
            for (const [rowTiles, into] of [[false, gemm], [true, tiles]] as const) {
              const t = await timeOrNote(() => native.benchMatmul({ M, K, N, wDtype, variant, iters, rowTiles, spillBytes }));
              if (t.seconds === undefined) note = t.note;
              else into.push(t.seconds);
            }
          }
          const shape = `M=${M} N=${N} K=${K} ${wDtype}`;
          if (note !== undefined) {
            rows.push({ op: 'matmul', shape, variant, note });
            continue;
          }
          const g = median(gemm);
          const t = median(tiles);
          rows.push({ op: 'matmul', shape, variant: `${variant} gemm`, seconds: g, gflops: (2 * M * K * N) / g / 1e9,
            note: `x${(t / g).toFixed(2)} over row tiles; spread ${spread(gemm)}` });
          rows.push({ op: 'matmul', shape, variant: `${variant} tiles`, seconds: t, gflops: (2 * M * K * N) / t / 1e9,
            note: `spread ${spread(tiles)}` });
        }
      }
    }
  }
  return rows;
}

/** max/min - 1 of the repeats, in percent. */
function spread(xs: number[]): string {
  return `${((100 * Math.max(...xs)) / Math.min(...xs) - 100).toFixed(0)}%`;
}

/** The memory-read floor: GB/s reading SPILL_BYTES on every compute thread, QUANT_REPEATS times. */
function readFloor(): Promise<number[]> {
  return readBandwidths(QUANT_REPEATS);
}

async function attentionRows(): Promise<Row[]> {
  const variants = available('attention');
  if (variants.length === 0) {
    return [{ op: 'attention', shape: '-', variant: '-', note: 'n/a (no attention op in this build)' }];
  }
  const rows: Row[] = [];
  const heads = 16;
  const kvHeads = 2;
  const headDim = 128;
  for (const seq of [1024, 4096]) {
    const group: Row[] = [];
    for (const variant of variants) {
      // The scalar reference only at the shorter length: at 4096 one call takes minutes.
      if (variant === 'reference' && seq > 1024) continue;
      const iters = variant === 'reference' || seq > 1024 ? 1 : 3;
      const t = await timeOrNote(() =>
        native.benchAttention({ seq, heads, kvHeads, headDim, causal: true, variant, iters }),
      );
      const shape = `seq=${seq} h=${heads}/${kvHeads} d=${headDim} causal`;
      const row: Row = { op: 'attention', shape, variant, ...t };
      // q·kᵀ and p·v, 2 flops per multiply-add, half of the square under the causal mask.
      if (t.seconds !== undefined) row.gflops = (2 * seq * seq * headDim * heads) / t.seconds / 1e9;
      group.push(row);
    }
    rows.push(...withRatios(group));
  }
  return rows;
}

// Qwen's vocabulary; the parameter sets of a chat decode step: transformers' defaults (top_k 50),
// top-p alone (top_k 0: every token is a candidate), min-p alone and temperature alone.
const SAMPLING_VOCAB = 151936;
const SAMPLING_PARAMS: { name: string; params: NativeSamplingParams }[] = [
  { name: 'T=0.7 top_k=50 top_p=0.8', params: { doSample: true, temperature: 0.7, topK: 50, topP: 0.8, minP: 0, repetitionPenalty: 1 } },
  { name: 'T=0.7 top_k=0 top_p=0.8', params: { doSample: true, temperature: 0.7, topK: 0, topP: 0.8, minP: 0, repetitionPenalty: 1 } },
  { name: 'T=1 top_k=0 top_p=0.99', params: { doSample: true, temperature: 1, topK: 0, topP: 0.99, minP: 0, repetitionPenalty: 1 } },
  { name: 'T=0.7 top_k=0 min_p=0.05', params: { doSample: true, temperature: 0.7, topK: 0, topP: 1, minP: 0.05, repetitionPenalty: 1 } },
  { name: 'T=0.7 only', params: { doSample: true, temperature: 0.7, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 } },
];

/**
 * One next-token choice at the full vocabulary, every sampling variant, each parameter set on a
 * flat and a peaked logits row; the ratio is to the plain reference in the same process.
 */
async function samplingRows(): Promise<Row[]> {
  const variants = available('sampling');
  const rows: Row[] = [];
  for (const row of ['peaked', 'flat'] as const) {
    for (const { name, params } of SAMPLING_PARAMS) {
      const group: Row[] = [];
      for (const variant of variants) {
        const { times, note } = await timeRepeats(REPEATS, () =>
          native.benchSampling({ vocab: SAMPLING_VOCAB, row, params, variant, iters: variant === 'reference' ? 3 : 20 }),
        );
        const r: Row = { op: 'sampling', shape: `V=${SAMPLING_VOCAB} ${row} ${name}`, variant, note };
        if (times.length > 0) r.seconds = median(times);
        group.push(r);
      }
      rows.push(...withRatios(group, 'reference'));
      for (const r of group) if (r.ratio !== undefined) r.note = `x${r.ratio.toFixed(1)} reference`;
    }
  }
  return rows;
}

// Rows of the 2B model's MLP weights (in = 1536 hidden, 8960 intermediate), quantized at load.
const QUANTIZE_ROW_SHAPES: [number, number][] = [
  [64, 8960],
  [256, 1536],
];

/**
 * Quantizing weights at load (the quantize_row op, one thread): each variant's time for a block
 * of rows as a ratio to the scalar reference in the same run, q8 at groups 32 and 128, q4 also at
 * 64 (its group at load).
 */
async function quantizeRowRows(): Promise<Row[]> {
  const variants = available('quantize_row');
  const rows: Row[] = [];
  for (const [count, n] of QUANTIZE_ROW_SHAPES) {
    for (const format of ['q8', 'q4'] as const) {
      for (const group of format === 'q4' ? [32, 64, 128] : [32, 128]) {
        const set: Row[] = [];
        for (const variant of variants) {
          const { times, note } = await timeRepeats(REPEATS, () =>
            native.benchQuantizeRow({ format, rows: count, n, group, variant, iters: variant === 'reference' ? 2 : 10 }),
          );
          const r: Row = { op: 'quantize_row', shape: `${count}x${n} ${format} g${group}`, variant, note };
          if (times.length > 0) r.seconds = median(times);
          set.push(r);
        }
        rows.push(...withRatios(set, 'reference'));
        for (const r of set) if (r.ratio !== undefined) r.note = `x${r.ratio.toFixed(1)} reference; ${((count * n) / (r.seconds ?? 1) / 1e6).toFixed(0)} Melem/s`;
      }
    }
  }
  return rows;
}

/** Runs only the quantize_row rows (quantizing weights at load). */
export async function runQuantizeRow(): Promise<void> {
  const info = native.info();
  console.log(`cpu: ${info.cpu.brand} (${info.cpu.physicalCores} cores, ${info.threads} threads)`);
  console.log(`median of ${REPEATS} repeats, each the best of N passes\n`);
  print(await quantizeRowRows());
}

/** Runs only the sampling rows. */
export async function runSampling(): Promise<void> {
  const info = native.info();
  console.log(`cpu: ${info.cpu.brand} (${info.cpu.physicalCores} cores, ${info.threads} threads)`);
  console.log(`median of ${REPEATS} repeats, each the best of N calls\n`);
  print(await samplingRows());
}

// Prefill (M=512, a 4096-token prompt) and vision-tower (M=4096 patches) shapes of the 2B model:
// MLP up/gate and down, the ViT's qkv and MLP.
const BF16_SHAPES: [number, number][] = [
  [1536, 8960],
  [8960, 1536],
  [1280, 3840],
  [1280, 5120],
  [5120, 1280],
];
const PEAK_REPEATS = 5;

/** Each probe PEAK_REPEATS times: the median is the peak used; min and max show the noise. */
async function peaks(): Promise<Map<string, { median: number; min: number; max: number }>> {
  const out = new Map<string, { median: number; min: number; max: number }>();
  for (const kind of PEAK_KINDS) {
    const runs: number[] = [];
    try {
      runs.push(...(await peakGflops(kind, PEAK_REPEATS)));
    } catch (err) {
      console.log(`peak ${kind}: n/a (${(err as Error).message})`);
      continue;
    }
    out.set(kind, { median: median(runs), min: Math.min(...runs), max: Math.max(...runs) });
  }
  return out;
}

// precision 'fast': the bf16 variants against the exact path's best (avx512) on the same shapes,
// each timed REPEATS times (best of 2 calls each) to show the spread on a shared machine.
const REPEATS = 3;
async function bf16Rows(peak: Map<string, { median: number }>): Promise<Row[]> {
  const bf16 = available('matmul_bf16').filter((v) => v !== 'reference');
  const exact = available('matmul').includes('avx512') ? ['avx512'] : [];
  if (bf16.length === 0) return [{ op: 'matmul_bf16', shape: '-', variant: '-', note: 'n/a (no AMX or AVX512-BF16 here)' }];
  const rows: Row[] = [];
  for (const M of [512, 4096]) {
    for (const [K, N] of BF16_SHAPES) {
      const group: Row[] = [];
      for (const [family, variant] of [...exact.map((v) => ['matmul', v] as const), ...bf16.map((v) => ['matmul_bf16', v] as const)]) {
        const { times, note } = await timeRepeats(REPEATS, () => native.benchMatmul({ M, K, N, wDtype: 'bf16', variant, iters: 2, family }));
        const row: Row = { op: family, shape: `M=${M} K=${K} N=${N} bf16`, variant, note };
        if (times.length > 0) {
          row.seconds = median(times);
          row.gflops = (2 * M * K * N) / row.seconds / 1e9;
          row.note = `spread ${spread(times)}`;
          const p = peak.get(PEAK_OF[variant] ?? '');
          if (p) row.ofPeak = row.gflops / p.median;
        }
        group.push(row);
      }
      rows.push(...withRatios(group, 'avx512'));
    }
  }
  return rows;
}

// Attention exact vs bf16: the vision tower's (non-causal, 16 heads of 80 as in the 2B ViT; 1024
// patches is a 448x448 image, 4096 about 900x900) and prompt prefill's (causal, the 2B language
// model's 12 query and 2 key/value heads of 128).
async function bf16AttentionRows(): Promise<Row[]> {
  const bf16 = available('attention_bf16').filter((v) => v !== 'reference');
  const exact = available('attention').includes('avx512') ? ['avx512'] : [];
  if (bf16.length === 0) return [];
  const rows: Row[] = [];
  const shapes = [
    ...[1024, 4096].map((seq) => ({ seq, heads: 16, kvHeads: 16, headDim: 80, causal: false })),
    ...[512, 2048].map((seq) => ({ seq, heads: 12, kvHeads: 2, headDim: 128, causal: true })),
  ];
  for (const c of shapes) {
    const group: Row[] = [];
    for (const [family, variant] of [...exact.map((v) => ['attention', v] as const), ...bf16.map((v) => ['attention_bf16', v] as const)]) {
      const { times, note } = await timeRepeats(REPEATS, () => native.benchAttention({ ...c, variant, iters: 2, family }));
      const row: Row = { op: family, shape: `seq=${c.seq} h=${c.heads}/${c.kvHeads} d=${c.headDim} ${c.causal ? 'causal' : 'full'}`, variant, note };
      if (times.length > 0) {
        row.seconds = median(times);
        // score and weighted-sum products: all of them, or under causal the lower triangle's
        row.gflops = ((c.causal ? 2 : 4) * c.seq * c.seq * c.headDim * c.heads) / row.seconds / 1e9;
        row.note = `spread ${spread(times)}`;
      }
      group.push(row);
    }
    rows.push(...withRatios(group, 'avx512'));
  }
  return rows;
}

function printBf16(rows: Row[]): void {
  const header = ['op', 'shape', 'variant', 'ms', 'GFLOP/s', 'of peak', 'xavx512', 'note'];
  const table = rows.map((r) => [
    r.op,
    r.shape,
    r.variant,
    r.seconds === undefined ? '' : fmt(r.seconds * 1e3, 2),
    fmt(r.gflops, 0),
    r.ofPeak === undefined ? '' : `${(100 * r.ofPeak).toFixed(0)}%`,
    fmt(r.ratio, 2),
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i >= 3 && i < 7 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  console.log(line(header));
  for (const row of table) console.log(line(row));
}

function withRatios(group: Row[], baseline = BASELINE): Row[] {
  const base = group.find((r) => r.variant === baseline)?.seconds;
  for (const r of group) {
    if (base !== undefined && r.seconds !== undefined) r.ratio = base / r.seconds;
  }
  return group;
}

function fmt(n: number | undefined, digits: number): string {
  return n === undefined ? '' : n.toFixed(digits);
}

function print(rows: Row[]): void {
  const header = ['op', 'shape', 'variant', 'ms', 'GFLOP/s', 'GB/s', `x${BASELINE}`];
  const table = rows.map((r) => [
    r.op,
    r.shape,
    r.variant,
    r.seconds === undefined ? '' : fmt(r.seconds * 1e3, 3),
    fmt(r.gflops, 1),
    fmt(r.gbps, 1),
    r.note ?? fmt(r.ratio, 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i >= 3 && i < 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  console.log(line(header));
  for (const row of table) console.log(line(row));
}

/** Runs the ops benchmark and prints its table. */
export async function runOps(): Promise<void> {
  const info = native.info();
  const { cpu } = info;
  console.log(`cpu: ${cpu.brand} (${cpu.physicalCores} cores, ${info.threads} threads; ${cpu.features.join(' ')})`);
  console.log(`best of N calls after a warm-up; x${BASELINE} = speed relative to "${BASELINE}" in this run\n`);
  const started = Date.now();
  const floor = await readFloor();
  console.log(`memory-read floor: ${floor.map((g) => g.toFixed(1)).join(', ')} GB/s (median ${median(floor).toFixed(1)})\n`);
  print([...(await matmulRows()), ...(await quantRows(floor, await peaks())), ...(await gemmRows()), ...(await attentionRows()), ...(await samplingRows()), ...(await quantizeRowRows())]);
  await bf16Table();
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

/** Runs only the quantized-weight rows (q8, q4 against bf16, with the memory-read floor). */
export async function runQuant(): Promise<void> {
  const info = native.info();
  console.log(`cpu: ${info.cpu.brand} (${info.cpu.physicalCores} cores, ${info.threads} threads)`);
  const started = Date.now();
  const floor = await readFloor();
  console.log(`memory-read floor: ${floor.map((g) => g.toFixed(1)).join(', ')} GB/s (median ${median(floor).toFixed(1)})`);
  const peak = await peaks();
  for (const [kind, p] of peak) console.log(`peak ${kind}: ${p.median.toFixed(0)} GFLOP/s (min ${p.min.toFixed(0)}, max ${p.max.toFixed(0)})`);
  console.log(`median of ${QUANT_REPEATS} runs, each the best of N calls; spread = slowest/fastest - 1\n`);
  print([...(await quantRows(floor, peak)), ...(await gemmRows()), ...(await quantizeRowRows())]);
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

/** Runs only the int8 GEMM rows: each int8-dot variant's GEMM against its own row tiles. */
export async function runQGemm(): Promise<void> {
  const info = native.info();
  console.log(`cpu: ${info.cpu.brand} (${info.cpu.physicalCores} cores, ${info.threads} threads)`);
  const started = Date.now();
  console.log(`median of ${QUANT_REPEATS} runs, each the best of N calls; spread = slowest/fastest - 1\n`);
  print(await gemmRows());
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

/**
 * Decode (M = 1) at the Qwen2-VL-2B shapes, bf16 / q8 / q4, and batched decode (M = 2, 4) for
 * q8 / q4, each with the variant this CPU runs for the format: GB/s of weight bytes and its share
 * of a memory-read floor measured just before each repeat (the load of a shared machine drifts
 * within a run; a floor taken once at the start made ratios of 40% and of 300% in one table).
 */
export async function runDecode(): Promise<void> {
  const info = native.info();
  console.log(`cpu: ${info.cpu.brand} (${info.cpu.physicalCores} cores, ${info.threads} threads)`);
  console.log(`median of ${QUANT_REPEATS} repeats, each a floor read then the best of N calls; spread = slowest/fastest - 1\n`);
  const started = Date.now();
  const chosen = info.ops.matmul?.chosenByFormat ?? {};
  const rows: Row[] = [];
  // M = 2 and 4: sequences decoding together, which read each weight once for all of them.
  // fp8: official FP8 checkpoints' weights (e4m3, one f32 scale per 128-block), on the exact path.
  for (const M of [1, 2, 4]) {
    for (const [N, K] of DECODE_SHAPES) {
      for (const wDtype of M === 1 ? (['bf16', 'fp8', 'q8', 'q4'] as const) : (['q8', 'q4'] as const)) {
        const variant = chosen[wDtype];
        if (variant === undefined) continue;
        const row: Row = { op: 'matmul', shape: `M=${M} N=${N} K=${K} ${wDtype}`, variant };
        rows.push(
          await againstFloor(row, native.weightBytes(wDtype, N, K), () =>
            native.benchMatmul({ M, K, N, wDtype, variant, iters: 10, spillBytes: SPILL_BYTES }),
          ),
        );
      }
    }
  }
  rows.push(...(await decodeAttentionRows()));
  print(rows);
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

/**
 * `run` (seconds per call) timed QUANT_REPEATS times, each right after a memory-read floor: the row
 * gets the median time, GB/s of `bytes` read per call and the median share of the floor.
 */
async function againstFloor(row: Row, bytes: number, run: () => Promise<number>): Promise<Row> {
  const floors: number[] = [];
  const { times, note } = await timeRepeats(QUANT_REPEATS, async () => {
    floors.push((await readBandwidths(1))[0]);
    return run();
  });
  if (note !== undefined) row.note = note;
  if (times.length > 0) {
    row.seconds = median(times);
    row.gbps = bytes / row.seconds / 1e9;
    const ofFloor = times.map((t, i) => bytes / t / 1e9 / floors[i]);
    row.note = `${(100 * median(ofFloor)).toFixed(0)}% of floor (${median(floors).toFixed(1)} GB/s); spread ${spread(times)}`;
  }
  return row;
}

// Qwen2-VL-2B's decoder: 28 layers, 12 query heads over 2 KV heads of 128. Contexts (cached
// tokens per sequence) with the number of sequences decoding together.
const DECODE_ATTENTION = { layers: 28, heads: 12, kvHeads: 2, headDim: 128 };
const DECODE_CONTEXTS: { context: number; sequences: number }[] = [
  { context: 512, sequences: 1 },
  { context: 4096, sequences: 1 },
  { context: 16384, sequences: 1 },
  { context: 1024, sequences: 8 },
];

/**
 * Attention of one decode step at the 2B shape (every layer), the KV cache stored as the pool stores
 * it, f32 (the default) and bf16 (engine.kvCache 'bf16', read as stored): GB/s of cached keys and
 * values read, against a memory-read floor taken just before each repeat. A bf16 row also gives its
 * speed over the f32 row of the same variant and shape (the two measured back to back). The
 * variants attention() can pick here, generic included as the portable baseline; then
 * precision 'fast''s (attention_bf16_decode), each row with its speed over the last exact
 * variant's row of the same cache.
 */
async function decodeAttentionRows(): Promise<Row[]> {
  const variants = available('attention').filter((v) => v !== 'reference');
  const fast = available('attention_bf16_decode').filter((v) => v !== 'reference');
  const rows: Row[] = [];
  for (const { context, sequences } of DECODE_CONTEXTS) {
    const { layers, heads, kvHeads, headDim } = DECODE_ATTENTION;
    const exact = new Map<string, Row>();  // the last exact variant's row per cache dtype
    const step = async (family: 'attention' | 'attention_bf16_decode', variant: string, kvDtype: 'f32' | 'bf16') => {
      const bytes = 2 * (kvDtype === 'bf16' ? 2 : 4) * layers * sequences * context * kvHeads * headDim;
      const shape = `decode step ${layers}L ctx=${context}${sequences > 1 ? ` x${sequences} seqs` : ''} h=${heads}/${kvHeads} d=${headDim} ${kvDtype} kv`;
      return againstFloor({ op: family, shape, variant }, bytes, () =>
        native.benchAttentionDecode({ ...DECODE_ATTENTION, context, sequences, variant, kvDtype, family, iters: context > 4096 ? 4 : 10 }),
      );
    };
    for (const variant of variants) {
      let f32: Row | undefined;
      for (const kvDtype of ['f32', 'bf16'] as const) {
        const row = await step('attention', variant, kvDtype);
        if (kvDtype === 'f32') f32 = row;
        else if (f32?.seconds !== undefined && row.seconds !== undefined) row.note = `${(f32.seconds / row.seconds).toFixed(2)}x the f32 kv row; ${row.note ?? ''}`;
        exact.set(kvDtype, row);
        rows.push(row);
      }
    }
    for (const variant of fast) {
      for (const kvDtype of ['f32', 'bf16'] as const) {
        const row = await step('attention_bf16_decode', variant, kvDtype);
        const base = exact.get(kvDtype);
        if (base?.seconds !== undefined && row.seconds !== undefined) row.note = `${(base.seconds / row.seconds).toFixed(2)}x ${base.variant}'s; ${row.note ?? ''}`;
        rows.push(row);
      }
    }
  }
  return rows;
}

/** The bf16 (precision 'fast') kernels at prefill / vision shapes against the exact path and the compute peaks. */
export async function runBf16(): Promise<void> {
  const info = native.info();
  console.log(`cpu: ${info.cpu.brand} (${info.cpu.physicalCores} cores, ${info.threads} threads; ${info.cpu.features.join(' ')})`);
  const started = Date.now();
  await bf16Table();
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

async function bf16Table(): Promise<void> {
  const info = native.info();
  const peak = await peaks();
  console.log(`\ncompute peaks, all ${info.threads} threads, operands resident (median of ${PEAK_REPEATS}, min-max):`);
  for (const [kind, p] of peak) console.log(`  ${kind.padEnd(13)} ${p.median.toFixed(0).padStart(6)} GFLOP/s  (${p.min.toFixed(0)}-${p.max.toFixed(0)})`);
  console.log(`\nprecision 'fast' (matmul_bf16) at prefill / vision shapes, median of ${REPEATS} (best of 2 calls each); of peak = GFLOP/s over the variant's ISA peak above\n`);
  printBf16([...(await bf16Rows(peak)), ...(await bf16AttentionRows())]);
}
