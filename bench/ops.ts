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
import { native } from '../lib/native/binding.js';

type WDtype = 'f32' | 'bf16' | 'f16' | 'q8' | 'q4';

interface Row {
  op: string;
  shape: string;
  variant: string;
  seconds?: number;
  gflops?: number;
  gbps?: number;
  ratio?: number;
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

async function matmulRows(): Promise<Row[]> {
  const variants = available('matmul');
  const rows: Row[] = [];
  const cases: { M: number; wDtype: WDtype }[] = [
    { M: 1, wDtype: 'bf16' },
    { M: 1, wDtype: 'f32' },
    { M: 16, wDtype: 'bf16' },
    { M: 512, wDtype: 'bf16' },
  ];
  for (const { M, wDtype } of cases) {
    for (const [K, N] of MATMUL_SHAPES) {
      const group: Row[] = [];
      // The scalar reference only at M = 1: at prefill sizes it would take minutes.
      const names = variants.filter((v) => v !== 'reference' || M === 1);
      for (const variant of names) {
        const iters = matmulIters(M, variant);
        const t = await timeOrNote(() => native.benchMatmul({ M, K, N, wDtype, variant, iters }));
        const row: Row = { op: 'matmul', shape: `M=${M} K=${K} N=${N} ${wDtype}`, variant, ...t };
        if (t.seconds !== undefined) {
          row.gflops = (2 * M * K * N) / t.seconds / 1e9;
          if (M === 1) row.gbps = (K * N * (wDtype === 'f32' ? 4 : 2)) / t.seconds / 1e9;
        }
        group.push(row);
      }
      rows.push(...withRatios(group));
    }
  }
  return rows;
}

// Decode and prefill shapes of Qwen2-VL-2B as N x K: MLP down, MLP up/gate, the LM head.
const QUANT_SHAPES: [number, number][] = [
  [1536, 8960],
  [8960, 1536],
  [151936, 1536],
];
const QUANT_REPEATS = 3;
// Weights and the floor's buffer exceed the last-level cache (480 MiB on the Sapphire Rapids VMs).
const SPILL_BYTES = 1024 * 2 ** 20;

/**
 * Quantized weights (q8, q4) against bf16 as stored, each variant that reads them: decode (M = 1)
 * reports GB/s of weight bytes (scales and zero points included) as a share of the memory-read
 * floor measured in the same run; prefill (M = 512) GFLOP/s. Each case runs QUANT_REPEATS times
 * (each a best-of) and reports the median and the spread (other processes share the cores).
 */
async function quantRows(floorGbps: number[]): Promise<Row[]> {
  const info = native.info().ops.matmul;
  const rows: Row[] = [];
  const floor = median(floorGbps);
  for (const M of [1, 512]) {
    for (const [N, K] of QUANT_SHAPES) {
      if (M === 512 && N > 10000) continue;  // the LM head runs for one row per sequence
      for (const wDtype of ['bf16', 'q8', 'q4'] as const) {
        const variants = (info?.variants ?? []).filter(
          (v) => v.available && v.name !== 'reference' && (v.formats ?? []).includes(wDtype) && (M === 1 || v.name !== 'generic'),
        );
        for (const v of variants) {
          const times: number[] = [];
          let note: string | undefined;
          for (let r = 0; r < QUANT_REPEATS && note === undefined; r++) {
            const t = await timeOrNote(() => native.benchMatmul({ M, K, N, wDtype, variant: v.name, iters: M === 1 ? 10 : 2, spillBytes: SPILL_BYTES }));
            if (t.seconds === undefined) note = t.note;
            else times.push(t.seconds);
          }
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
              row.note = `spread ${spread(times)}`;
            }
          }
          rows.push(row);
        }
      }
    }
  }
  return rows;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** max/min - 1 of the repeats, in percent. */
function spread(xs: number[]): string {
  return `${((100 * Math.max(...xs)) / Math.min(...xs) - 100).toFixed(0)}%`;
}

/** The memory-read floor: GB/s reading SPILL_BYTES on every compute thread, QUANT_REPEATS times. */
async function readFloor(): Promise<number[]> {
  const bytes = SPILL_BYTES;
  const out: number[] = [];
  for (let r = 0; r < QUANT_REPEATS; r++) out.push(bytes / (await native.benchRead({ bytes, iters: 3 })) / 1e9);
  return out;
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

function withRatios(group: Row[]): Row[] {
  const base = group.find((r) => r.variant === BASELINE)?.seconds;
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
  print([...(await matmulRows()), ...(await quantRows(floor)), ...(await attentionRows())]);
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

/** Runs only the quantized-weight rows (q8, q4 against bf16, with the memory-read floor). */
export async function runQuant(): Promise<void> {
  const info = native.info();
  console.log(`cpu: ${info.cpu.brand} (${info.cpu.physicalCores} cores, ${info.threads} threads)`);
  const started = Date.now();
  const floor = await readFloor();
  console.log(`memory-read floor: ${floor.map((g) => g.toFixed(1)).join(', ')} GB/s (median ${median(floor).toFixed(1)})`);
  console.log(`median of ${QUANT_REPEATS} runs, each the best of N calls; spread = slowest/fastest - 1\n`);
  print(await quantRows(floor));
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
}
