import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatShares } from '../../bench/shares.js';
import type { WorkPeak } from '../../bench/floors.js';
import type { BenchReport, BenchStage } from '../../bench/run.js';
import type { StageFlops } from '../../bench/work.js';
import { UsageError, integerOption, stringValue, threadsOption } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl bench [--model DIR] [--weights bf16|q8|q4] [--vision-weights bf16|q8|q4]
                    [--precision exact|fast] [--tokens N] [--image WxH] [--threads N]
                    [--placement auto|mmap|owned|huge] [--profile] [--json]

Times the vision tower on one image, the prefill of a text prompt and greedy decode, and measures
in the same process the floors they are compared with: the memory read bandwidth (decode floor =
weight bytes a token reads in the format in use / bandwidth) and the compute peaks of the kernels
that run prefill and the vision tower (their weight matrices' FLOPs over the peak of the matmul
for the format in use: the f32 multiply-add of AVX-512, AVX2 or SSE2 for bf16 under exact, AMX or
AVX512-BF16 under fast, the int8 dot for q8/q4, AMX's bf16 tiles for them under fast where the
CPU has AMX; their attention's over the attention kernel's).
Ratio = floor / time (1 = at the floor).

options:
  --model DIR          checkpoint folder or Hub id (default: a synthetic checkpoint at Qwen2-VL-2B
                       widths with 4 decoder layers and 2 vision blocks; needs the repository's
                       test fixtures for its tokenizer)
  --weights FORMAT     the language model's weights: bf16 (as stored), q8 or q4 (default bf16)
  --vision-weights FORMAT
                       the vision tower's linear weights: bf16 (as stored), q8 or q4 (default bf16)
  --precision MODE     exact (default) or fast (bf16 activations)
  --tokens N           decode steps timed (integer from 1 to 4096; default 32)
  --image WxH          the image's size in pixels (default 448x448)
  --threads N          compute threads (integer from 1 to 1024; default: physical cores)
  --placement WHERE    where the language model's weights live: auto (default: chosen from the
                       placement probe's reads, see README "Weight placement"), mmap, owned
                       (4 KiB pages) or huge (huge pages)
  --profile            also show where each stage's time goes, per op family (matmul, attention, …),
                       from profiled passes run after the timed ones
  --json               print the report as one JSON object
  -h, --help           show this help
`;

/** The qwen2-vl fixture checkpoint of a clone (its tokenizer serves the synthetic checkpoint); lib/cli/commands or dist/cli/commands. */
function fixtureTokenizerDir(): string | undefined {
  const dir = fileURLToPath(new URL('../../../test/fixtures/qwen2-vl/checkpoint', import.meta.url));
  return existsSync(`${dir}/tokenizer.json`) ? dir : undefined;
}

function parseImage(raw: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(raw);
  const [w, h] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(w >= 28 && h >= 28 && w <= 8192 && h <= 8192)) throw new UsageError(`--image must be WxH with sides from 28 to 8192 pixels, got '${raw}'`);
  return { width: w, height: h };
}

function weightsOption(values: Record<string, unknown>, name: 'weights' | 'vision-weights'): 'bf16' | 'q8' | 'q4' {
  const v = stringValue(values, name) ?? 'bf16';
  if (v !== 'bf16' && v !== 'q8' && v !== 'q4') throw new UsageError(`--${name} must be bf16, q8 or q4, got '${v}'`);
  return v;
}

function fmtSeconds(s: number): string {
  if (s >= 1) return `${s.toFixed(2)} s`;
  return s >= 1e-3 ? `${(s * 1e3).toFixed(s >= 0.01 ? 1 : 2)} ms` : `${(s * 1e6).toFixed(1)} µs`;
}

function table(r: BenchReport): string {
  const head = ['stage', 'time', 'rate', 'floor', 'of floor'];
  const rows = r.stages.map((s) => [
    s.stage === 'decode' ? 'decode/token' : s.stage,
    fmtSeconds(s.seconds),
    `${s.rate.toFixed(1)} ${s.rateUnit}`,
    `${fmtSeconds(s.floorSeconds)} (${s.floorBy})`,
    `x${s.ofFloor.toPrecision(2)}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  const what = r.synthetic ? `synthetic Qwen2-VL-2B widths, ${r.synthetic.layers} decoder layers, ${r.synthetic.visionDepth} vision blocks` : r.model;
  return [
    `model: ${what} (${r.family}; weights ${r.weights}, vision weights ${r.visionWeights}, precision ${r.precision}; loaded in ${r.loadSeconds.toFixed(2)} s)`,
    `cpu: ${r.cpu}, ${r.threads} threads`,
    placementLine(r),
    `memory read: ${r.readGBps.best.toFixed(1)} GB/s (best of ${r.readGBps.runs.map((g) => g.toFixed(1)).join(', ')}); ${(r.decodeBytesPerToken / 2 ** 20).toFixed(0)} MiB of weights per token`,
    `compute peaks: ${r.peaks.map((p) => `${p.kind} ${p.best.toFixed(0)} GFLOP/s (best of ${p.runs.map((g) => g.toFixed(0)).join(', ')})`).join(', ')}`,
    ...r.stages.filter((s) => s.peaks).map((s) => `${s.stage} work: ${workLine(s.stage === 'vision' ? r.visionFlops : r.prefillFlops, s.peaks!)}`),
    '',
    line(head),
    ...rows.map(line),
    ...profileLines(r),
    '',
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

/** A stage's GFLOP per kind of work and the kernel and peak each is measured against. */
function workLine(f: StageFlops, peaks: NonNullable<BenchStage['peaks']>): string {
  const part = (what: string, flops: number, p: WorkPeak) => `${what} ${(flops / 1e9).toPrecision(3)} GFLOP on ${p.variant} (${p.kind})`;
  return `${part('matrices', f.matrices, peaks.matrices)}, ${part('attention', f.attention, peaks.attention)}`;
}

/** With --profile: each stage's split per op family. */
function profileLines(r: BenchReport): string[] {
  const profiled = r.stages.filter((s) => s.profile);
  if (profiled.length === 0) return [];
  return ['', 'where the time goes (profiled passes; decode/token the median of 8 steps):', ...profiled.map((s) => `  ${s.stage === 'decode' ? 'decode/token' : s.stage}: ${formatShares(s.profile!)}`)];
}

/** The placement in use and what the probe measured for each placement, best round and spread. */
function placementLine(r: BenchReport): string {
  const p = r.placement;
  const what = (['mmap', 'owned', 'huge'] as const)
    .filter((k) => p.probe.readGBps[k] !== undefined)
    .map((k) => {
      const runs = p.probe.runs[k]!;
      return `${k} ${p.probe.readGBps[k]!.toFixed(1)} (${Math.min(...runs).toFixed(1)}-${Math.max(...runs).toFixed(1)})`;
    });
  const used = p.probe.readGBps[p.used as 'mmap' | 'owned' | 'huge'];
  return `weights placement: ${p.used}${p.requested === 'auto' ? ' (auto)' : ''}${used !== undefined ? `, probe read ${used.toFixed(1)} GB/s` : ''}; probe GB/s, best (range) of ${p.probe.runs.owned?.length ?? 0}: ${what.join(', ')}`;
}

/** `qwenvl bench`: vision, prefill and decode timings against floors measured in the same process. */
export const benchCommand: Command = {
  name: 'bench',
  summary: 'time vision, prefill and decode against the memory and compute floors of this machine (--json)',
  help: HELP,
  options: {
    model: { type: 'string' },
    weights: { type: 'string' },
    'vision-weights': { type: 'string' },
    precision: { type: 'string' },
    tokens: { type: 'string' },
    image: { type: 'string' },
    threads: { type: 'string' },
    placement: { type: 'string' },
    profile: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const weights = weightsOption(values, 'weights');
    const visionWeights = weightsOption(values, 'vision-weights');
    const precision = stringValue(values, 'precision') ?? 'exact';
    if (precision !== 'exact' && precision !== 'fast') throw new UsageError(`--precision must be exact or fast, got '${precision}'`);
    const tokens = integerOption(values, 'tokens', 1, 4096) ?? 32;
    const rawImage = stringValue(values, 'image');
    const image = rawImage === undefined ? { width: 448, height: 448 } : parseImage(rawImage);
    const threads = threadsOption(values);
    const placement = stringValue(values, 'placement') ?? 'auto';
    if (placement !== 'auto' && placement !== 'mmap' && placement !== 'owned' && placement !== 'huge') {
      throw new UsageError(`--placement must be auto, mmap, owned or huge, got '${placement}'`);
    }
    const model = stringValue(values, 'model');
    if (model === '') throw new UsageError('--model needs a folder');
    const tokenizerDir = model === undefined ? fixtureTokenizerDir() : undefined;
    if (model === undefined && tokenizerDir === undefined) {
      throw new UsageError('give --model DIR: the synthetic checkpoint takes its tokenizer from the repository\'s test/fixtures/qwen2-vl/checkpoint, not found here', false);
    }
    const json = values.json === true;
    // Loaded only now, so that help and usage errors work without the native addon.
    const { runBench } = await import('../../bench/run.js');
    const report = await runBench({
      ...(model !== undefined ? { model } : { tokenizerDir }),
      weights, visionWeights, precision, tokens, image, placement, profile: values.profile === true,
      ...(threads !== undefined ? { threads } : {}),
      log: (l) => void process.stderr.write(`bench: ${l}\n`),
    });
    process.stdout.write(`${json ? JSON.stringify(report, null, 2) : table(report)}\n`);
    return 0;
  },
};
