// engine.kvCache 'bf16' (keys and values rounded to bf16 as they are stored, read by attention as
// stored) against the default 'f32' over a long run: the prompt (an image and a long text) plus
// f32's own greedy answer, teacher-forced through both, so every position's logits compare:
// mean and worst cosine of the logits rows and top-1 agreement (their argmax) over all positions.
// The decode path (a cache step per token) is held through bf16's own free-running greedy answer:
// the fraction of its tokens that f32's prefill, given the same prefix, picks too, against the same
// fraction for f32's own answer (decode and prefill sum in other orders, so near ties flip even
// there). How long bf16's answer stays equal to f32's is reported, not held: one near tie ends it.
// Measured (Sapphire Rapids, AVX-512 kernels; prompt of an image and ~660 text tokens + 160):
//   fixture        logits cos mean (worst)   top-1 of positions   greedy picked bf16 / f32 own
//   qwen2-vl       0.999970 (0.99689)        98.2% of 836         93.8% / 95.0%
//   qwen2.5-vl     0.999972 (0.99954)        97.7% of 836         88.8% / 84.4%
//   qwen3-vl       0.999995 (0.99991)        99.0% of 825         98.1% / 100%
//   qwen3-vl-moe   0.999683 (0.81: a flipped expert routing)  98.3% of 825   98.8% / 100%
//   generated 256-wide Qwen2-VL, 2865 positions: 0.999998 (0.999996), 100%, 100% / 100%
// (With ~1100 text tokens + 256 the figures were alike: means 0.99929-0.999998, top-1 98.0-100%.)
// Budgets (README, "Concurrency and caches"): mean cosine > 0.998, top-1 >= 95%, bf16's greedy
// picked within 10 points of f32's own. A decode kernel that widened bf16 one bit short measured
// 0.4% picked (the teacher-forced prefill measures did not move: it runs other kernels).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type Model, type PreparedInputs } from '../../lib/index.js';
import { FAMILIES, REPO_FIXTURES, checkpointDir } from '../helpers/fixtures.js';
import { extend } from '../helpers/logit-agreement.js';
import { argmax, compareRows, writeWideQwen2Vl } from '../helpers/logits-metrics.js';

const IMAGE = join(REPO_FIXTURES, 'qwen2-vl/inputs/gradient_224x224.png');
const LONG_TEXT = Array.from({ length: 24 }, (_, i) => `Point ${i + 1}: describe the colours, the light and the shapes you see, and compare them with the previous point.`).join(' ');
const question = [{ role: 'user' as const, content: [{ type: 'image' as const, image: IMAGE }, { type: 'text' as const, text: LONG_TEXT }] }];
const ANSWER_TOKENS = 160;

interface Measured {
  logitsCos: number;
  worstCos: number;
  top1: number;
  positions: number;
  /** Of bf16's free-running greedy tokens, the fraction f32's prefill picks too given the same prefix. */
  decodeTop1: number;
  /** The same for f32's own greedy tokens: decode and prefill sum in other orders, and near ties flip. */
  selfTop1: number;
  /** Free-running greedy: tokens of bf16's answer equal to f32's before the first difference. */
  greedySame: number;
}

async function allLogits(model: Model, p: PreparedInputs) {
  const l = await model.logits(p, { all: true });
  return { data: Float32Array.from(l.data as Float32Array), vocab: l.shape[1] };
}

async function measure(dir: string): Promise<Measured> {
  const f32 = await loadModel(dir, { threads: 2 });
  const bf16 = await loadModel(dir, { threads: 2, engine: { kvCache: 'bf16' } });
  try {
    const greedy = { doSample: false, maxTokens: ANSWER_TOKENS, eosTokenIds: [1 << 30] };  // no end: the whole run
    const [a, b] = [(await f32.chat(question, greedy)).tokens, (await bf16.chat(question, greedy)).tokens];
    let greedySame = 0;
    while (greedySame < a.length && a[greedySame] === b[greedySame]) greedySame++;
    const prompt = await f32.prepare(question);
    // Teacher-forced on f32's answer: both models' logits at every position (the prefill path).
    const e = await allLogits(f32, extend(prompt, a));
    const h = await allLogits(bf16, extend(prompt, a));
    const rows = compareRows(e.data, h.data, e.vocab);
    // bf16's greedy answer (the decode path, a step per token) judged by f32 at each prefix, and
    // f32's own (e) as the baseline.
    const picked = (l: { data: Float32Array; vocab: number }, tokens: number[]) => {
      let n = 0;
      for (let i = 0; i < tokens.length; i++) {
        const from = (prompt.seqLength - 1 + i) * l.vocab;
        if (argmax(l.data, from, from + l.vocab) === tokens[i]) n++;
      }
      return n / tokens.length;
    };
    const decodeTop1 = picked(await allLogits(f32, extend(prompt, b)), b);
    return { logitsCos: rows.meanCos, worstCos: rows.worstCos, top1: rows.top1, positions: rows.positions, decodeTop1, selfTop1: picked(e, a), greedySame };
  } finally {
    f32.dispose();
    bf16.dispose();
  }
}

// Measured (see the header), with headroom; not 1: the logits must differ (bf16 storage ran).
const BUDGET = { logitsCos: 0.998, top1: 0.95, decodeTop1Below: 0.1 };

function check(name: string, m: Measured) {
  console.log(
    `kvCache bf16 vs f32, ${name}: logits cos mean ${m.logitsCos.toFixed(6)} worst ${m.worstCos.toFixed(6)}, ` +
      `top-1 ${(100 * m.top1).toFixed(1)}% of ${m.positions} positions; greedy tokens f32's prefill picks too: bf16's ${(100 * m.decodeTop1).toFixed(1)}%, ` +
      `f32's own ${(100 * m.selfTop1).toFixed(1)}%; bf16's answer ` +
      `the same as f32's ${m.greedySame}/${ANSWER_TOKENS} before the first difference`,
  );
  expect(m.logitsCos).toBeGreaterThan(BUDGET.logitsCos);
  expect(m.logitsCos).toBeLessThan(1);
  expect(m.top1).toBeGreaterThanOrEqual(BUDGET.top1);
  expect(m.decodeTop1).toBeGreaterThanOrEqual(m.selfTop1 - BUDGET.decodeTop1Below);
}

describe("engine.kvCache 'bf16' against 'f32' over a long run", () => {
  for (const family of FAMILIES) {
    it(`${family} fixture`, async () => check(family, await measure(checkpointDir(family))), 300_000);
  }

  // Qwen2-VL-2B's structure at 256-wide text (see writeWideQwen2Vl; the vision tower stays small).
  const work = mkdtempSync(join(tmpdir(), 'qwenvl-kvcache-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  it('a 256-wide generated Qwen2-VL checkpoint', async () => {
    const dir = await writeWideQwen2Vl(work, { hidden_size: 256 });
    check('generated 256-wide', await measure(dir));
  }, 300_000);
});
