/**
 * The `engine` benchmark: what the engine adds around the kernels, on the synthetic checkpoint at
 * Qwen2-VL-2B widths (bench/synthetic.ts).
 *
 * 1. Decode step breakdown: native decode steps with the op profiler on. Each op family's time is
 *    summed inside its entry point; "outside kernels" is the rest of the native step (model glue,
 *    KV bookkeeping), and "host call" adds what the JS call around it costs (worker dispatch,
 *    argument checks, promise resolution).
 * 2. Long generation: `stream()` over many tokens (default 4000). Per-token time at the end is
 *    compared with the start after taking away the attention op's own growth (the KV grows, so
 *    attention must), measured by the profiler in a native loop over the same lengths. What is left
 *    is host-side work that grows with the length, which should be none.
 * 3. Abort: a text prompt sized so its prefill takes about 3 s; the signal fires halfway through and
 *    the time until `chat()` settles is the abort latency.
 *
 * `QWENVL_BENCH_LAYERS` (default 4) sets the decoder depth, `QWENVL_BENCH_TOKENS` (default 4000)
 * the long generation, `QWENVL_BENCH_PREFILL_S` (default 3) the prefill the abort interrupts,
 * `QWENVL_BENCH_WEIGHTS` (bf16, q8, q4; default bf16) the language model's `weights` option.
 * @module
 */
import { loadModel, type Model } from '../lib/index.js';
import { native, type NativeHandle, type NativeStepProfile } from '../lib/native/binding.js';
import { engineKvDtype } from '../lib/bench/profile.js';
import { median } from '../lib/bench/shares.js';
import { TEXT, time, writeSyntheticCheckpoint } from './synthetic.js';

const GREEDY = { doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };
/** An end-of-sequence id outside the vocabulary: random weights must not stop a run early. */
const NO_EOS = [TEXT.vocab];

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const ms = (ns: number) => (ns / 1e6).toFixed(2);

/** A text prompt of roughly `words` tokens. */
const prompt = (words: number) => [{ role: 'user', content: Array.from({ length: words }, (_, i) => `w${i % 89}`).join(' ') }];

/** One decode step as the profiler saw it, with the wall time of the JS call around it. */
interface StepSample {
  wallNs: number;
  stepNs: number;
  kernelNs: number;
  attentionNs: number;
  ops: NativeStepProfile['ops'];
}

/**
 * Prefills `words` words in a fresh session, then runs `steps` greedy decode steps with the
 * profiler on, exactly the native call the generation loop makes per token.
 */
async function profiledDecode(model: Model, words: number, steps: number): Promise<StepSample[]> {
  const handle = (model as unknown as { handle: NativeHandle }).handle; // the low-level API under Model
  const p = await model.prepare(prompt(words));
  const S = p.seqLength;
  const session = native.modelNewSession(handle, 1, S + steps + 1, { kvDtype: engineKvDtype(model) });
  try {
    native.sessionSampling(session, { params: [GREEDY], seed: 0, history: p.inputIds });
    let r = await native.sessionForward(session, { ids: p.inputIds, steps: S, positions: p.positionIds, logits: 'sample' });
    const out: StepSample[] = [];
    for (let i = 0; i < steps; i++) {
      const pos = S + i + p.ropeDeltas[0];
      const t0 = process.hrtime.bigint();
      r = await native.sessionForward(session, {
        ids: r.tokens!,
        steps: 1,
        positions: Int32Array.of(pos, pos, pos),
        logits: 'sample',
        profile: true,
      });
      const wallNs = Number(process.hrtime.bigint() - t0);
      const prof = r.profile!;
      const kernelNs = Object.values(prof.ops).reduce((a, o) => a + o.ns, 0);
      out.push({ wallNs, stepNs: prof.stepNs, kernelNs, attentionNs: prof.ops.attention?.ns ?? 0, ops: prof.ops });
    }
    return out;
  } finally {
    native.disposeHandle(session);
  }
}

function reportBreakdown(samples: StepSample[]): void {
  const steady = samples.slice(Math.min(5, samples.length - 1)); // first steps fault in pages
  const step = median(steady.map((s) => s.stepNs));
  const kernels = median(steady.map((s) => s.kernelNs));
  const wall = median(steady.map((s) => s.wallNs));
  const outside = mean(steady.map((s) => (s.stepNs - s.kernelNs) / s.stepNs));
  const host = mean(steady.map((s) => (s.wallNs - s.kernelNs) / s.wallNs));
  console.log(`decode step         ${ms(step)} ms native, ${ms(wall)} ms as seen from JS (median of ${steady.length} steps)`);
  console.log(`  kernels           ${ms(kernels)} ms`);
  console.log(`  outside kernels   ${(outside * 100).toFixed(2)}% of the native step (target <= 3%)`);
  console.log(`  incl. host call   ${(host * 100).toFixed(2)}% of the JS call`);
  const families = Object.keys(steady[0].ops).sort((a, b) => steady[0].ops[b].ns - steady[0].ops[a].ns);
  for (const f of families) {
    const ns = median(steady.map((s) => s.ops[f]?.ns ?? 0));
    const calls = steady[0].ops[f].calls;
    console.log(`    ${f.padEnd(16)}${ms(ns).padStart(8)} ms  ${String(calls).padStart(4)} calls  ${((ns / step) * 100).toFixed(1)}%`);
  }
}

/**
 * Arrival times (ns from the call) of the chunks of one `stream()` run, and its token count. Each
 * token yields at most one chunk (none while it completes a multi-byte character or is special).
 */
async function streamTimes(model: Model, words: number, tokens: number): Promise<{ at: number[]; tokens: number }> {
  const t0 = process.hrtime.bigint();
  const at: number[] = [];
  const it = model.stream(prompt(words), { doSample: false, maxTokens: tokens, eosTokenIds: NO_EOS });
  for (;;) {
    const r = await it.next();
    if (r.done) return { at, tokens: r.value.tokens.length };
    at.push(Number(process.hrtime.bigint() - t0));
  }
}

async function reportLongRun(model: Model, tokens: number): Promise<void> {
  const words = 16, win = Math.min(200, Math.floor(tokens / 4));
  const native_ = await profiledDecode(model, words, tokens);
  const run = await streamTimes(model, words, tokens);
  const at = run.at;
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  const head = gaps.slice(10, 10 + win), tail = gaps.slice(-win);
  const nHead = native_.slice(10, 10 + win), nTail = native_.slice(-win);
  const attnGrowth = mean(nTail.map((s) => s.attentionNs)) - mean(nHead.map((s) => s.attentionNs));
  const nonAttn = (xs: StepSample[]) => mean(xs.map((s) => s.wallNs - s.attentionNs));
  console.log(`long run            ${run.tokens} tokens through stream() (${at.length} chunks), windows of ${win} chunks`);
  console.log(`  per token         start ${ms(mean(head))} ms, end ${ms(mean(tail))} ms (+${ms(mean(tail) - mean(head))} ms)`);
  console.log(`  attention growth  +${ms(attnGrowth)} ms per token (profiler, same lengths)`);
  console.log(`  growth beyond it  ${ms(mean(tail) - mean(head) - attnGrowth)} ms per token through stream()`);
  console.log(`  native non-attn   start ${ms(nonAttn(nHead))} ms, end ${ms(nonAttn(nTail))} ms per step`);
}

async function reportAbort(model: Model, targetS: number): Promise<void> {
  // Prefill time grows a little faster than linearly (attention); two probes are enough to size it.
  const words = [256, 512];
  const probe: number[] = [];
  for (const w of words) {
    const p = await model.prepare(prompt(w));
    probe.push((await time(() => model.logits(p)))[1] / p.seqLength);
  }
  // Then refine on the real call (chat: tokenization and the first token included) until within 10%.
  let n = Math.round(targetS / probe[1]);
  let p = await model.prepare(prompt(n));
  let [, full] = await time(() => model.chat(prompt(n), { doSample: false, maxTokens: 1, eosTokenIds: NO_EOS }));
  for (let i = 0; i < 3 && Math.abs(full - targetS) > 0.1 * targetS; i++) {
    n = Math.max(64, Math.round((n * targetS) / full));
    p = await model.prepare(prompt(n));
    [, full] = await time(() => model.chat(prompt(n), { doSample: false, maxTokens: 1, eosTokenIds: NO_EOS }));
  }
  const latencies: number[] = [];
  for (let i = 0; i < 3; i++) {
    const ac = new AbortController();
    const run = model.chat(prompt(n), { doSample: false, maxTokens: 1, eosTokenIds: NO_EOS, signal: ac.signal });
    await new Promise((r) => setTimeout(r, (full * 1000) / 2));
    const t0 = performance.now();
    ac.abort();
    const r = await run;
    latencies.push(performance.now() - t0);
    if (r.finishReason !== 'abort') console.log('  (the run finished before the abort; the prompt is too short)');
  }
  console.log(`abort               prefill of ${p.seqLength} tokens takes ${full.toFixed(2)} s; aborted halfway it settles in ${latencies.map((l) => l.toFixed(1)).join(', ')} ms (target < 100 ms)`);
}

export async function runEngine(): Promise<void> {
  const layers = Number(process.env.QWENVL_BENCH_LAYERS ?? 4);
  const tokens = Number(process.env.QWENVL_BENCH_TOKENS ?? 4000);
  const prefillS = Number(process.env.QWENVL_BENCH_PREFILL_S ?? 3);
  const ckpt = await writeSyntheticCheckpoint(layers, 1);
  try {
    const weights = (process.env.QWENVL_BENCH_WEIGHTS ?? 'bf16') as 'bf16' | 'q8' | 'q4';
    console.log(`synthetic Qwen2-VL-2B widths: ${layers} decoder layers, ${(ckpt.bytes / 2 ** 30).toFixed(2)} GiB bf16, ${native.info().threads} threads, weights ${weights}`);
    // No prefix cache: each timed prefill and stream must compute its prompt, not copy an earlier one.
    const model = await loadModel(ckpt.dir, { weights, engine: { prefixCacheBytes: 0 } });
    try {
      reportBreakdown(await profiledDecode(model, 64, 40));
      await reportLongRun(model, tokens);
      await reportAbort(model, prefillS);
    } finally {
      model.dispose();
    }
  } finally {
    await ckpt.remove();
  }
}
