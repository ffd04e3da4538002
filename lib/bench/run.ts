/**
 * `qwenvl bench`: one model timed end to end (vision tower on one image, prefill of a text prompt,
 * greedy decode) next to floors measured in the same process: decode against the weight bytes a
 * token reads over the memory read bandwidth, prefill and vision against their FLOPs over the
 * compute peaks of the kernels that run them (the weight matrices' in the format in use, and
 * attention's, under the precision mode).
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import { loadModel } from '../model/load.js';
import type { Model } from '../model/model.js';
import type { PlacementReport } from '../model/placement.js';
import { native } from '../native/binding.js';
import { attentionPeak, matmulPeak, peakGflops, peakKindFor, readBandwidths, type PeakKind, type WorkPeak } from './floors.js';
import { profileText, profileVision } from './profile.js';
import { opShares, type OpShare } from './shares.js';
import { writeSyntheticCheckpoint, time, type SyntheticCheckpoint } from './synthetic.js';
import { checkpointWork, prefillFlops, visionFlops, type BenchWeights, type StageFlops } from './work.js';

/** What to benchmark. */
export interface BenchOptions {
  /** A checkpoint folder; without it a synthetic checkpoint at Qwen2-VL-2B widths is written (needs `tokenizerDir`). */
  model?: string;
  /** Where the synthetic checkpoint's tokenizer and processor files come from. */
  tokenizerDir?: string;
  /** Decoder layers and vision blocks of the synthetic checkpoint. */
  syntheticLayers?: number;
  syntheticVisionDepth?: number;
  weights: BenchWeights;
  /** The vision tower's linear weights (loadModel's `visionWeights`; 'bf16' keeps them as stored). */
  visionWeights: BenchWeights;
  precision: 'exact' | 'fast';
  /** Decode steps timed. */
  tokens: number;
  image: { width: number; height: number };
  threads?: number;
  /** Where the language model's weights live (loadModel's `placement`; default 'auto'). */
  placement?: 'auto' | 'mmap' | 'owned' | 'huge';
  /** Also profile each stage: its split per op family (see {@link BenchStage.profile}). */
  profile?: boolean;
  /** Progress lines (what is being measured). */
  log?: (line: string) => void;
}

/** One timed stage against its floor. */
export interface BenchStage {
  stage: 'vision' | 'prefill' | 'decode';
  /** Seconds for the stage (decode: per token). */
  seconds: number;
  /** Work items per second: patches (vision), tokens (prefill, decode). */
  rate: number;
  rateUnit: 'patches/s' | 'tokens/s';
  /** What was done: patches, prompt tokens, decode steps. */
  count: number;
  /** The floor in seconds: the least time the measured bandwidth or peak allows. */
  floorSeconds: number;
  /** What bounds the stage. */
  floorBy: 'memory' | 'compute';
  /** Compute stages: the peaks the floor divides the weight matrices' and attention's FLOPs by. */
  peaks?: { matrices: WorkPeak; attention: WorkPeak };
  /** floorSeconds / seconds: 1 would run at the floor. */
  ofFloor: number;
  /**
   * With `profile`: where the stage's time goes, from profiled passes run after the timed ones
   * (vision and prefill one pass each, decode the median of 8 steps): the pass's seconds and each
   * op family's, largest first.
   */
  profile?: { seconds: number; ops: OpShare[] };
}

/** The report `qwenvl bench --json` prints. */
export interface BenchReport {
  model: string;
  synthetic: { layers: number; visionDepth: number } | null;
  family: string;
  weights: BenchWeights;
  visionWeights: BenchWeights;
  precision: 'exact' | 'fast';
  threads: number;
  cpu: string;
  loadSeconds: number;
  /** Where the language model's weights were and the placement probe's read bandwidths (see `Model.placement`). */
  placement: PlacementReport;
  /** Memory read bandwidth, GB/s: the best of the repeats (the floor is what the machine can do; other load only lowers it) and every repeat. */
  readGBps: { best: number; runs: number[] };
  /** Every compute-peak probe the floors use, GFLOP/s (int8 dots: 2 operations a multiply-add, as FLOPs): the best of the repeats and every repeat. */
  peaks: { kind: PeakKind; best: number; runs: number[] }[];
  /** Weight bytes one decode token reads, in the format they run in. */
  decodeBytesPerToken: number;
  prefillFlops: StageFlops;
  visionFlops: StageFlops;
  /** Notes on what the floors leave out. */
  notes: string[];
  stages: BenchStage[];
}

function pixels(width: number, height: number): Uint8Array {
  return new Uint8Array(width * height * 3).map((_, i) => (i * 37) & 0xff);
}

/** Runs the benchmark; the model is loaded, timed and disposed, the synthetic checkpoint removed. */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const log = o.log ?? (() => {});
  let synthetic: SyntheticCheckpoint | undefined;
  const layers = o.syntheticLayers ?? 4, depth = o.syntheticVisionDepth ?? 2;
  if (o.model === undefined) {
    if (o.tokenizerDir === undefined) throw inputError('bench: the synthetic checkpoint needs a folder with a Qwen2-VL tokenizer');
    log(`writing a synthetic checkpoint at Qwen2-VL-2B widths: ${layers} decoder layers, ${depth} vision blocks`);
    synthetic = await writeSyntheticCheckpoint(layers, depth, o.tokenizerDir);
  }
  try {
    const dir = synthetic?.dir ?? o.model!;
    log(`loading ${dir} (weights ${o.weights}, vision weights ${o.visionWeights}, precision ${o.precision})`);
    const [model, loadSeconds] = await time(() =>
      // No prefix cache: decode is timed as the difference of runs of one prompt, each prefilling it.
      loadModel(dir, {
        weights: o.weights,
        visionWeights: o.visionWeights,
        precision: o.precision,
        engine: { prefixCacheBytes: 0 },
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        ...(o.placement !== undefined ? { placement: o.placement } : {}),
      }),
    );
    try {
      return await measure(model, model.dir, o, loadSeconds, synthetic ? { layers, visionDepth: depth } : null, log);
    } finally {
      model.dispose();
    }
  } finally {
    await synthetic?.remove();
  }
}

async function measure(model: Model, dir: string, o: BenchOptions, loadSeconds: number, synthetic: BenchReport['synthetic'], log: (l: string) => void): Promise<BenchReport> {
  const config = model.config;
  const image = { data: pixels(o.image.width, o.image.height), width: o.image.width, height: o.image.height };
  log(`vision tower on one ${o.image.width}x${o.image.height} image`);
  await model.encodeImages([image]); // warm-up: threads, page faults of the mapped weights
  const [emb, tVision] = await time(() => model.encodeImages([image]));
  const patches = emb.shape[0] * config.vision.spatialMergeSize ** 2;
  const visionSplit = o.profile ? opShares([await profileVision(model, image)]) : undefined;

  log('prefill');
  const text = 'Benchmark prompt: describe the weather, the city, its streets and its people in detail. '.repeat(8);
  const messages = [{ role: 'user' as const, content: text }];
  const prepared = await model.prepare(messages);
  await model.logits(prepared);
  const [, tPrefill] = await time(() => model.logits(prepared));
  // 10 profiled decode steps after the profiled prefill; the first 2 (still warming) are left out.
  const textSplit = o.profile ? await profileText(model, prepared, 10) : undefined;

  log(`decode, ${o.tokens} tokens`);
  // Per token: a long run minus a one-token run of the same prompt, each the fastest of a few (the
  // difference of two noisy times is noisier). An end-of-sequence id outside the vocabulary keeps
  // the run from stopping early.
  const gen = { doSample: false, eosTokenIds: [config.text.vocabSize] };
  const fastest = async (runs: number, maxTokens: number) => {
    let best = Infinity, tokens = 0;
    for (let i = 0; i < runs; i++) {
      const [r, t] = await time(() => model.chat(messages, { ...gen, maxTokens }));
      if (t < best) [best, tokens] = [t, r.tokens.length];
    }
    return { best, tokens };
  };
  const one = await fastest(3, 1);
  const many = await fastest(2, o.tokens + 1);
  const steps = Math.max(1, many.tokens - 1);
  const decodeNotes: string[] = [];
  let tDecode = (many.best - one.best) / steps;
  if (!(tDecode > 0)) {
    // Decode too short to stand out of the noise of the prompt's time: bound it by the whole run.
    tDecode = many.best / (steps + 1);
    decodeNotes.push('decode was within the noise of the prompt: its time is the whole run per token (an upper bound); ask for more --tokens');
  }

  log('floors: memory read bandwidth and compute peaks');
  const read = await readBandwidths(3);
  const work = await checkpointWork(dir, config, o.weights);
  const fPrefill = prefillFlops(work, config, prepared.seqLength);
  const fVision = visionFlops(work, config, patches);
  // A pre-quantized checkpoint (AWQ, GPTQ, FP8) runs its matrices in its own formats: measured
  // against the peak of the ISA the precision mode runs on, as a stand-in.
  const stored: WorkPeak = { kind: peakKindFor(o.precision), variant: 'the checkpoint\'s formats', standIn: true };
  const attention = attentionPeak(o.precision);
  const prefillPeaks = { matrices: config.quantization ? stored : matmulPeak(o.precision, o.weights), attention };
  const visionPeaks = { matrices: config.quantization && o.visionWeights === 'bf16' ? stored : matmulPeak(o.precision, o.visionWeights), attention };
  const kinds = [...new Set([prefillPeaks.matrices, visionPeaks.matrices, attention].map((p) => p.kind))];
  const peaks: BenchReport['peaks'] = [];
  for (const kind of kinds) {
    const runs = await peakGflops(kind, 3);
    peaks.push({ kind, best: Math.max(...runs), runs });
  }
  const gf = (p: WorkPeak) => peaks.find((q) => q.kind === p.kind)!.best * 1e9;
  const computeFloor = (f: StageFlops, p: { matrices: WorkPeak; attention: WorkPeak }) => f.matrices / gf(p.matrices) + f.attention / gf(p.attention);
  const bw = Math.max(...read) * 1e9;
  const stage = (s: BenchStage['stage'], seconds: number, count: number, unit: BenchStage['rateUnit'], floorSeconds: number, floorBy: BenchStage['floorBy']): BenchStage => ({
    stage: s, seconds, rate: s === 'decode' ? 1 / seconds : count / seconds, rateUnit: unit, count, floorSeconds, floorBy, ofFloor: floorSeconds / seconds,
  });
  const notes = ['vision FLOPs count full attention (windowed towers do less)', 'prefill times the logits of a text prompt (LM head on the last token)'];
  notes.push(...decodeNotes);
  if (work.decodeBytes < 512 * 2 ** 20) notes.push('weights this small may stay in the last-level cache between tokens: decode can beat the DRAM floor');
  if (work.moe) notes.push('MoE: decode bytes and FLOPs count every expert, a token reads only the routed ones');
  const standIns = new Map<string, WorkPeak>();
  for (const p of [prefillPeaks.matrices, visionPeaks.matrices, attention]) if (p.standIn) standIns.set(p.variant, p);
  for (const p of standIns.values()) notes.push(`no peak probe for ${p.variant}: its FLOPs are counted against the ${p.kind} peak`);
  return {
    model: dir,
    synthetic,
    family: config.family,
    weights: o.weights,
    visionWeights: o.visionWeights,
    precision: o.precision,
    threads: native.info().threads,
    cpu: native.info().cpu.brand.trim(),
    loadSeconds,
    placement: model.placement,
    readGBps: { best: Math.max(...read), runs: read },
    peaks,
    decodeBytesPerToken: work.decodeBytes,
    prefillFlops: fPrefill,
    visionFlops: fVision,
    notes,
    stages: [
      { ...stage('vision', tVision, patches, 'patches/s', computeFloor(fVision, visionPeaks), 'compute'), peaks: visionPeaks, ...(visionSplit ? { profile: visionSplit } : {}) },
      { ...stage('prefill', tPrefill, prepared.seqLength, 'tokens/s', computeFloor(fPrefill, prefillPeaks), 'compute'), peaks: prefillPeaks, ...(textSplit ? { profile: opShares([textSplit.prefill]) } : {}) },
      { ...stage('decode', tDecode, steps, 'tokens/s', work.decodeBytes / bw, 'memory'), ...(textSplit ? { profile: opShares(textSplit.decode.slice(2)) } : {}) },
    ],
  };
}
