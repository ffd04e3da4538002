/**
 * Where qwenvl's time goes on the peer benchmark's shapes (`--profile`): the op profiler's split
 * of one 512-token prefill pass and of decode steps after it, per op family, the native call the
 * generation loop makes (as bench/engine.ts does for decode).
 * @module
 */
import type { Model, PreparedInputs } from '../../lib/index.js';
import { native, type NativeHandle, type NativeStepProfile } from '../../lib/native/binding.js';
import { median } from './table.js';

const GREEDY = { doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };

/**
 * The KV cache storage the model's engine gives its sessions (`engine.kvCache`, bf16 by default
 * under precision 'fast'): a profiled session must use it too, or its attention is not the one
 * `stream()` runs.
 */
export function engineKvDtype(model: Model): 'f32' | 'bf16' {
  return (model as unknown as { engine: { options: { kvCache: 'f32' | 'bf16' } } }).engine.options.kvCache;
}

/** The profiled prefill of `prepared` (one pass) and `steps` profiled decode steps after it. */
export async function profileText(model: Model, prepared: PreparedInputs, steps: number): Promise<{ prefill: NativeStepProfile; decode: NativeStepProfile[] }> {
  const handle = (model as unknown as { handle: NativeHandle }).handle; // the low-level API under Model
  const S = prepared.seqLength;
  const session = native.modelNewSession(handle, 1, S + steps + 1, { kvDtype: engineKvDtype(model) });
  try {
    native.sessionSampling(session, { params: [GREEDY], seed: 0, history: prepared.inputIds });
    let r = await native.sessionForward(session, { ids: prepared.inputIds, steps: S, positions: prepared.positionIds, logits: 'sample', profile: true });
    const prefill = r.profile!;
    const decode: NativeStepProfile[] = [];
    for (let i = 0; i < steps; i++) {
      const pos = S + i + prepared.ropeDeltas[0];
      r = await native.sessionForward(session, { ids: r.tokens!, steps: 1, positions: Int32Array.of(pos, pos, pos), logits: 'sample', profile: true });
      decode.push(r.profile!);
    }
    return { prefill, decode };
  } finally {
    native.disposeHandle(session);
  }
}

/** The profiled vision tower on one image (its preprocessing outside the profile). */
export async function profileVision(model: Model, width: number, height: number, pixels: Uint8Array): Promise<NativeStepProfile> {
  const handle = (model as unknown as { handle: NativeHandle }).handle; // the low-level API under Model
  const p = await model.processor.processImages([{ data: pixels, width, height }]);
  const r = await native.modelEncodeVision(handle, p.pixelValues, p.shape[1], Int32Array.from(p.imageGridThw.flat()), false, undefined, true);
  return r.profile!;
}

/** Op families by share of the step, largest first: "matmul 82% (41 ms), attention 9% …". */
export function shares(steps: NativeStepProfile[]): string {
  const step = median(steps.map((s) => s.stepNs));
  const fams = Object.keys(steps[0].ops);
  const ns = Object.fromEntries(fams.map((f) => [f, median(steps.map((s) => s.ops[f]?.ns ?? 0))]));
  const inside = Object.values(ns).reduce((a, b) => a + b, 0);
  const parts = fams
    .sort((a, b) => ns[b] - ns[a])
    .filter((f) => ns[f] / step >= 0.01)
    .map((f) => `${f} ${((100 * ns[f]) / step).toFixed(0)}% (${(ns[f] / 1e6).toFixed(1)} ms)`);
  return `${(step / 1e6).toFixed(1)} ms: ${parts.join(', ')}; outside ops ${((100 * (step - inside)) / step).toFixed(0)}%`;
}
