// Weights quantized at load (loadModel's `weights: 'q8' | 'q4'`) against the exact path, on the
// fixture checkpoints and on a deeper copy of the Qwen2-VL fixture: the logits of a prompt with an
// image plus the exact model's own greedy continuation (teacher-forced, every position compared),
// by cosine similarity and by greedy top-1 agreement. The budgets are measured (values in each
// case's comment) with a margin that a broken kernel does not fit in: breaking the q4 zero point
// or dropping one block of 32 in the kernels fails them.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Conversation, loadModel, type LoadOptions, type LoadProgress, QwenVLError } from '../../lib/index.js';
import { native } from '../../lib/native/binding.js';
import { writeDeepCheckpoint } from '../helpers/deep-checkpoint.js';
import { agreement, type Agreement, extend } from '../helpers/logit-agreement.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';
import { moeConfig, moeWeights, writeMoeCheckpoint } from '../helpers/moe-checkpoint.js';

const CONTINUATION = 24;

function ask(family: string): Conversation {
  const image = join(fixtureDir(family), 'inputs/gradient_224x224.png');
  return [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'What is shown?' }] }];
}

async function measure(dir: string, family: string, options: LoadOptions): Promise<Agreement> {
  const exact = await loadModel(dir);
  const quant = await loadModel(dir, options);
  try {
    const prompt = await exact.prepare(ask(family));
    const greedy = await exact.chat(ask(family), { doSample: false, maxTokens: CONTINUATION });
    expect(greedy.tokens.length).toBe(CONTINUATION);  // the fixtures never pick EOS this early
    const full = extend(prompt, greedy.tokens);
    const a = await exact.logits(full, { all: true });
    const b = await quant.logits(full, { all: true });
    const vocab = exact.config.text.vocabSize;
    return agreement(a.data as Float32Array, b.data as Float32Array, vocab, prompt.seqLength - 1, full.seqLength - 1);
  } finally {
    exact.dispose();
    quant.dispose();
  }
}

describe('weights quantized at load', () => {
  it('converts the language model and reports it, the vision tower stays as stored unless asked', async () => {
    const dir = checkpointDir('qwen2-vl');
    const stages: LoadProgress[] = [];
    const m = await loadModel(dir, { weights: 'q4', onProgress: (p) => stages.push(p) });
    const h = (m as unknown as { handle: Parameters<typeof native.modelWeightFormat>[0] }).handle;
    expect(native.modelWeightFormat(h).format).toBe('q4');
    m.dispose();
    const converting = stages.filter((s) => s.message.startsWith('quantizing'));
    expect(converting.length).toBeGreaterThan(0);
    for (let i = 1; i < stages.length; i++) expect(stages[i].fraction).toBeGreaterThanOrEqual(stages[i - 1].fraction);
    for (const [weights, format] of [['bf16', 'bf16'], ['q8', 'q8'], ['auto', 'q8'], [undefined, 'bf16']] as const) {
      const x = await loadModel(dir, weights === undefined ? {} : { weights, visionWeights: 'q8' });
      expect(native.modelWeightFormat((x as unknown as { handle: Parameters<typeof native.modelWeightFormat>[0] }).handle).format).toBe(format);
      x.dispose();
    }
  });

  it('refuses bad values with E_INPUT naming the option', async () => {
    for (const [key, value] of [['weights', 'q2'], ['weights', 8], ['visionWeights', 'int4'], ['weights', null]] as const) {
      const e = await loadModel(checkpointDir('qwen2-vl'), { [key]: value } as unknown as LoadOptions).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(QwenVLError);
      expect((e as QwenVLError).code).toBe('E_INPUT');
      expect((e as QwenVLError).message).toContain(`options.${key}`);
    }
  });

  // The fixtures are random-weight models 32 wide: no structure for the quantization to keep, so
  // these are a worst case (a 4-bit step of a random group is ~8% of its weights' spread, and
  // nearly flat logits make top-1 fragile). Measured with f16 scales and 4-bit zero points, q4 in
  // fitted groups of 64 where a weight's input allows, else 32, q8 in groups of 64 likewise (here
  // the MLP's down projections; min cos / mean cos / top-1 agreement over 25 positions) -> budget:
  const BUDGETS: Record<string, Record<'q8' | 'q4', Agreement>> = {
    // q8 0.9973 / 0.9991 / 0.88 (all in groups of 32: 0.9975 / 0.9992 / 0.83); q4 0.315 / 0.867 / 0.29
    // (the minimum one position; in groups of 32 with the plain range fit it measured 0.530 / 0.882 / 0.25)
    'qwen2-vl': { q8: { minCos: 0.99, meanCos: 0.998, top1: 0.75 }, q4: { minCos: 0.25, meanCos: 0.84, top1: 0.12 } },
    // q8 0.9889 / 0.9983 / 0.92 (32s: 0.9853 / 0.9981 / 0.88); q4 0.856 / 0.936 / 0.54 (range-fit 32s: 0.807 / 0.917 / 0.50)
    'qwen2.5-vl': { q8: { minCos: 0.975, meanCos: 0.997, top1: 0.75 }, q4: { minCos: 0.7, meanCos: 0.89, top1: 0.33 } },
    // q8 0.9985 / 0.9996 / 0.96 (32s: 0.9986 / 0.9994 / 0.96); q4 0.920 / 0.936 / 0.88 (range-fit 32s: 0.948 / 0.962 / 0.92)
    'qwen3-vl': { q8: { minCos: 0.997, meanCos: 0.999, top1: 0.87 }, q4: { minCos: 0.88, meanCos: 0.92, top1: 0.79 } },
    // q8 0.8399 / 0.9923 / 0.88 (32s: 0.8437 / 0.9927 / 0.83); q4 0.649 / 0.892 / 0.25 (range-fit 32s: 0.633 / 0.905 / 0.42), with the routed
    // experts quantized too (gate/up: H = 32 is one group; down stays bf16: I = 16 is no whole group; router as
    // stored). The q8 minimum is one position, an expert choice tipped by the inputs' error in this random 8-expert,
    // top-2 model (the other 23 average 0.9992); with the experts as stored it measured 0.9446 / 0.9969 / 0.83.
    'qwen3-vl-moe': { q8: { minCos: 0.78, meanCos: 0.988, top1: 0.75 }, q4: { minCos: 0.55, meanCos: 0.88, top1: 0.17 } },
  };

  const within = (r: Agreement, b: Agreement) => {
    expect(r.meanCos).toBeGreaterThanOrEqual(b.meanCos);
    expect(r.minCos).toBeGreaterThanOrEqual(b.minCos);
    expect(r.top1).toBeGreaterThanOrEqual(b.top1);
  };

  for (const family of ['qwen2-vl', 'qwen2.5-vl', 'qwen3-vl', 'qwen3-vl-moe']) {
    for (const weights of ['q8', 'q4'] as const) {
      it(`${family} ${weights}: logits stay within the budget`, async () => {
        const r = await measure(checkpointDir(family), family, { weights });
        within(r, BUDGETS[family][weights]);
      });
    }
    // Under 'fast' the prompt's matmuls read the q8 weights through AMX bf16 tiles (activations
    // in bf16 rather than int8), or stay on the int8 kernels where the CPU has no AMX (ops/matmul.h,
    // matmul_bf16_variant): the q8 budget holds either way. Measured on AMX (min / mean cos / top-1): qwen2-vl 0.9979 /
    // 0.9995 / 0.83, qwen2.5-vl 0.9904 / 0.9989 / 0.88, qwen3-vl 0.99952 / 0.99969 / 0.96,
    // qwen3-vl-moe 0.9947 / 0.9990 / 0.88 (experts quantized too).
    it(`${family} q8 under precision 'fast': logits stay within the q8 budget`, async () => {
      within(await measure(checkpointDir(family), family, { weights: 'q8', precision: 'fast' }), BUDGETS[family].q8);
    });
  }

  it('visionWeights: the image features stay within the budget', async () => {
    // Cosine of the vision tower's output (the merged features of a 224x224 image) against the
    // tower as stored. Measured q8 0.99966 / 0.99808 / 0.99968, q4 0.971 / 0.846 / 0.956
    // (qwen2-vl / qwen2.5-vl / qwen3-vl; range-fit 32s: 0.966 / 0.863 / 0.959).
    const budget = { q8: 0.996, q4: 0.8 };
    for (const family of ['qwen2-vl', 'qwen2.5-vl', 'qwen3-vl']) {
      const image = join(fixtureDir(family), 'inputs/gradient_224x224.png');
      const exact = await loadModel(checkpointDir(family));
      try {
        const x = (await exact.encodeImages([image])).data as Float32Array;
        for (const visionWeights of ['q8', 'q4'] as const) {
          const m = await loadModel(checkpointDir(family), { visionWeights });
          const y = (await m.encodeImages([image])).data as Float32Array;
          m.dispose();
          let dot = 0, nx = 0, ny = 0;
          for (let i = 0; i < x.length; i++) {
            dot += x[i] * y[i];
            nx += x[i] * x[i];
            ny += y[i] * y[i];
          }
          expect(dot / Math.sqrt(nx * ny), `${family} ${visionWeights}`).toBeGreaterThanOrEqual(budget[visionWeights]);
        }
      } finally {
        exact.dispose();
      }
    }
  });

  describe('generated MoE checkpoint (32 experts, top-4, every expert projection quantized)', () => {
    // hidden 64, moe_intermediate 64: gate/up and down are whole groups of 64, so all of a layer's
    // experts are q8/q4 (the fixture's down projection, I = 16, stays bf16). Measured (min cos /
    // mean cos / top-1 over 25 positions): q8 (64s) 0.99991 / 0.99993 / 1.00 (32s: 0.9891 / 0.9992 /
    // 1.00); q4 (fitted 64s) 0.9770 / 0.9867 / 1.00 (range-fit 32s: 0.9776 / 0.9873 / 1.00).
    const MOE: Record<'q8' | 'q4', Agreement> = {
      q8: { minCos: 0.98, meanCos: 0.998, top1: 0.9 },
      q4: { minCos: 0.95, meanCos: 0.975, top1: 0.83 },
    };
    let work = '';
    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'qwenvl-moe-q-'));
      const config = moeConfig({ hidden: 64, headDim: 32, layers: 2, experts: 32, topK: 4, moeIntermediate: 64 });
      await writeMoeCheckpoint(join(work, 'ckpt'), config, moeWeights(config, 7), join(work, 'files'));
    });
    afterAll(() => rmSync(work, { recursive: true, force: true }));
    for (const weights of ['q8', 'q4'] as const) {
      it(`${weights}: logits stay within the budget`, async () => {
        within(await measure(join(work, 'ckpt'), 'qwen3-vl-moe', { weights }), MOE[weights]);
      });
    }
    it("'auto' quantizes the experts as 'q8' does (the same logits bit for bit; the experts in its weight cache)", async () => {
      const cacheDir = join(work, 'cache');
      const logits = async (weights: 'auto' | 'q8') => {
        const m = await loadModel(join(work, 'ckpt'), weights === 'auto' ? { weights, weightCache: cacheDir } : { weights });
        try {
          return (await m.logits(await m.prepare(ask('qwen3-vl-moe')))).data as Float32Array;
        } finally {
          m.dispose();
        }
      };
      expect(await logits('auto')).toEqual(await logits('q8'));
      const [file] = readdirSync(cacheDir).filter((f) => f.endsWith('.weights'));
      const bytes = readFileSync(join(cacheDir, file));
      for (const t of ['gate_up_proj', 'down_proj']) expect(bytes.includes(`model.language_model.layers.1.mlp.experts.${t}`), t).toBe(true);
    });
  });

  describe('deeper checkpoint (8 decoder layers)', () => {
    let deep: { dir: string; remove: () => void };
    beforeAll(async () => {
      deep = await writeDeepCheckpoint(8, 2);
    });
    afterAll(() => deep?.remove());
    // Eight copies of random layers amplify every error (a chaotic network): measured q8 0.929 /
    // 0.9941 / 0.83 with the down projections in groups of 64 (all in 32s: 0.959 / 0.9953 / 0.88; f32
    // scales: 0.977 / 0.9960 / 0.75); q4 -0.25 / 0.694 / 0.17 (range-fit 32s: -0.02 / 0.685 / 0.12;
    // q4 keeps only the mean).
    const DEEP: Record<'q8' | 'q4', Agreement> = {
      q8: { minCos: 0.9, meanCos: 0.99, top1: 0.62 },
      q4: { minCos: -1, meanCos: 0.6, top1: 0 },
    };
    for (const weights of ['q8', 'q4'] as const) {
      it(`${weights}: logits stay within the budget`, async () => {
        within(await measure(deep.dir, 'qwen2-vl', { weights }), DEEP[weights]);
      });
    }
  });
});
