/**
 * Where a model's time goes, per op family: profiled passes of the vision tower, of a prompt's
 * prefill and of decode steps after it (the native calls the generation loop makes; shares.ts
 * splits them). `qwenvl bench --profile` and `npm run bench -- peers --profile` print them.
 * @internal
 * @module
 */
import type { Model } from '../model/model.js';
import type { PreparedInputs } from '../model/inputs.js';
import type { ImageInput } from '../processor/image.js';
import { native, type NativeHandle, type NativeStepProfile } from '../native/binding.js';

const GREEDY = { doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };

/** The low-level handle under a Model (these passes call the native API the Model wraps). */
function handleOf(model: Model): NativeHandle {
  return (model as unknown as { handle: NativeHandle }).handle;
}

/**
 * The KV cache storage the model's engine gives its sessions (`engine.kvCache`, bf16 by default
 * under precision 'fast'): a profiled session must use it too, or its attention is not the one
 * `stream()` runs.
 */
export function engineKvDtype(model: Model): 'f32' | 'bf16' {
  return (model as unknown as { engine: { options: { kvCache: 'f32' | 'bf16' } } }).engine.options.kvCache;
}

/** The profiled prefill of `prepared` (one pass) and `steps` profiled greedy decode steps after it. */
export async function profileText(model: Model, prepared: PreparedInputs, steps: number): Promise<{ prefill: NativeStepProfile; decode: NativeStepProfile[] }> {
  const S = prepared.seqLength;
  const session = native.modelNewSession(handleOf(model), 1, S + steps + 1, { kvDtype: engineKvDtype(model) });
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
export async function profileVision(model: Model, image: ImageInput): Promise<NativeStepProfile> {
  const p = await model.processor.processImages([image]);
  const r = await native.modelEncodeVision(handleOf(model), p.pixelValues, p.shape[1], Int32Array.from(p.imageGridThw.flat()), false, undefined, true);
  return r.profile!;
}
