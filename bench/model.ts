/**
 * The `model` benchmark: a synthetic checkpoint with Qwen2-VL-2B's real widths (text 1536/8960,
 * 12 heads, 2 KV heads, vocab 151936; vision 1280 wide, 16 heads) but only a few layers, run end to
 * end: load, vision tower on a 448x448 image, prefill, greedy decode. Per-layer times let one
 * extrapolate to the full depth. The decode step is compared with a roofline measured in the same
 * process: the weight bytes a token reads divided by the matmul op's own M=1 bandwidth.
 *
 * Where the CPU has a bf16 kernel (AMX, AVX512-BF16), the vision tower and the prefill are timed
 * again under `precision: 'fast'` on the same checkpoint, with the speed-up over exact.
 *
 * `QWENVL_BENCH_LAYERS` (default 4) and `QWENVL_BENCH_VISION_DEPTH` (default 2) set the depths;
 * `QWENVL_BENCH_WEIGHTS` (bf16, q8, q4; default bf16) the language model's `weights` option.
 * @module
 */
import { loadModel } from '../lib/index.js';
import { native } from '../lib/native/binding.js';
import { checkpointWork } from '../lib/bench/work.js';
import { TEXT, time, VISION, writeSyntheticCheckpoint } from './synthetic.js';

export async function runModel(): Promise<void> {
  const layers = Number(process.env.QWENVL_BENCH_LAYERS ?? 4);
  const depth = Number(process.env.QWENVL_BENCH_VISION_DEPTH ?? 2);
  const ckpt = await writeSyntheticCheckpoint(layers, depth);
  try {
    console.log(`synthetic Qwen2-VL-2B widths: ${layers} decoder layers, ${depth} vision blocks, ${(ckpt.bytes / 2 ** 30).toFixed(2)} GiB bf16 (written in ${ckpt.writeSeconds.toFixed(1)} s)`);

    const weights = (process.env.QWENVL_BENCH_WEIGHTS ?? 'bf16') as 'bf16' | 'q8' | 'q4';
    // No prefix cache: the decode time is the difference of two runs of one prompt, and a cached
    // prompt would skip the second run's prefill.
    const [model, tLoad] = await time(() => loadModel(ckpt.dir, { weights, engine: { prefixCacheBytes: 0 } }));
    const rssAfterLoad = process.memoryUsage().rss;
    try {
      const side = 448;
      const pixels = new Uint8Array(side * side * 3).map((_, i) => (i * 37) & 0xff);
      const image = { data: pixels, width: side, height: side };
      const messages = [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'Describe this image in detail.' }] }];
      await model.encodeImages([image]); // warm-up: threads, page faults of the mapped weights
      const [emb, tVision] = await time(() => model.encodeImages([image]));
      const prepared = await model.prepare(messages);
      await model.logits(prepared);
      const [, tPrefill] = await time(() => model.logits(prepared));
      // Decode time per token: the difference between a long and a one-token run of the same prompt.
      // An end-of-sequence id outside the vocabulary: random weights must not stop the run early.
      const opts = { doSample: false, eosTokenIds: [TEXT.vocab] };
      const [, tOne] = await time(() => model.chat(messages, { ...opts, maxTokens: 1 }));
      const steps = 33;
      const [r, tMany] = await time(() => model.chat(messages, { ...opts, maxTokens: steps }));
      const decodeTokens = r.tokens.length - 1;
      const tDecode = (tMany - tOne) / Math.max(1, decodeTokens);

      const H = TEXT.hidden;
      // Bytes per token in the weights' format (q8/q4: scales and zero points included), counted
      // from the checkpoint as `qwenvl bench` counts them.
      const tokenBytes = (await checkpointWork(ckpt.dir, model.config, weights)).decodeBytes;
      const variant = native.info().ops.matmul.chosenByFormat?.[weights] ?? native.info().ops.matmul.chosen;
      const gbps = await native.benchMatmul({ M: 1, K: H, N: TEXT.inter, wDtype: weights, variant, iters: 20 })
        .then((s) => native.weightBytes(weights, TEXT.inter, H) / s / 1e9);
      const roof = tokenBytes / (gbps * 1e9);
      const patches = emb.shape[0] * VISION.merge ** 2;
      console.log(`load                ${tLoad.toFixed(2)} s (weights ${weights}; RSS after load ${(rssAfterLoad / 2 ** 30).toFixed(2)} GiB)`);
      console.log(`vision tower        ${(tVision * 1e3).toFixed(1)} ms for ${patches} patches (${(patches / tVision).toFixed(0)} patches/s, ${((tVision * 1e3) / depth).toFixed(1)} ms per block incl. merger share)`);
      console.log(`prefill             ${(tPrefill * 1e3).toFixed(1)} ms for ${prepared.seqLength} tokens (${(prepared.seqLength / tPrefill).toFixed(0)} tokens/s; includes the vision tower)`);
      console.log(`decode              ${(tDecode * 1e3).toFixed(2)} ms/token over ${decodeTokens} tokens`);
      console.log(`decode roofline     ${(roof * 1e3).toFixed(2)} ms/token = ${(tokenBytes / 2 ** 20).toFixed(0)} MiB of weights per token at ${gbps.toFixed(1)} GB/s (matmul M=1, this process)`);
      console.log(`decode efficiency   x${(roof / tDecode).toFixed(2)} of the roofline`);
      const headBytes = native.weightBytes(weights, TEXT.vocab, H);
      console.log(`per decoder layer   ~${(((tDecode - headBytes / (gbps * 1e9)) * 1e3) / layers).toFixed(2)} ms/token (lm_head at roofline removed): x28 layers for the real 2B model`);
    } finally {
      model.dispose();
    }
    if (native.info().fast.matmulByFormat.bf16) await timeFast(ckpt.dir, depth);
  } finally {
    await ckpt.remove();
  }
}

/** The vision tower and the prefill under precision 'fast' against exact, on the same image and prompt. */
async function timeFast(dir: string, depth: number): Promise<void> {
  const side = 448;
  const pixels = new Uint8Array(side * side * 3).map((_, i) => (i * 37) & 0xff);
  const image = { data: pixels, width: side, height: side };
  const messages = [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'Describe this image in detail.' }] }];
  const times: Record<string, { vision: number[]; prefill: number[] }> = {};
  // Alternating exact and fast runs, three each: the machine's load drifts, the ratio less so.
  const models = { exact: await loadModel(dir), fast: await loadModel(dir, { precision: 'fast' }) };
  try {
    for (const m of Object.values(models)) await m.encodeImages([image]);
    const prepared = await models.exact.prepare(messages);
    for (let i = 0; i < 3; i++) {
      for (const [name, m] of Object.entries(models)) {
        const t = (times[name] ??= { vision: [], prefill: [] });
        t.vision.push((await time(() => m.encodeImages([image])))[1]);
        t.prefill.push((await time(() => m.logits(prepared)))[1]);
      }
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const span = (a: number[]) => `${(Math.min(...a) * 1e3).toFixed(0)}-${(Math.max(...a) * 1e3).toFixed(0)} ms`;
    const chosen = native.info().fast.matmulByFormat.bf16;
    console.log(`\nprecision 'fast' (matmul_bf16 ${chosen}), median of 3 (min-max), ${depth} vision blocks, ${prepared.seqLength}-token prompt:`);
    for (const stage of ['vision', 'prefill'] as const) {
      const e = times.exact[stage], f = times.fast[stage];
      console.log(`${stage.padEnd(8)} exact ${(med(e) * 1e3).toFixed(0)} ms (${span(e)})  fast ${(med(f) * 1e3).toFixed(0)} ms (${span(f)})  x${(med(e) / med(f)).toFixed(2)}`);
    }
  } finally {
    models.exact.dispose();
    models.fast.dispose();
  }
}
