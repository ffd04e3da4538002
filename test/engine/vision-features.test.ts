// Vision features as a native handle: on the generation path the vision tower's output stays in
// native memory from the encoder to the prefill (no Float32Array of features is ever made in JS),
// images' and videos' runs joined natively in the order the prompt's placeholders take them. The
// handle is freed by disposeHandle (or by the collector); a disposed one is E_DISPOSED and one of
// another model E_INPUT. The low-level APIs (encodeImages, logits, trace) keep returning arrays.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { RequestCancel } from '../../lib/model/cancel.js';
import { encodeFeatures, encodePrepared, prefillArgs, type LoopContext } from '../../lib/model/generate.js';
import type { PreparedInputs } from '../../lib/model/inputs.js';
import { native, type NativeForwardArgs } from '../../lib/native/binding.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';

type Internals = { loopContext(c: RequestCancel): LoopContext };

let model: Model;
let other: Model;
let ctx: LoopContext;
let p: PreparedInputs;

const FAMILY = 'qwen3-vl'; // DeepStack levels too
const frames = Array.from({ length: 4 }, (_, i) => join(fixtureDir(FAMILY), 'inputs', 'video_128x96_8f', `frame_0${i}.png`));
const image = join(fixtureDir(FAMILY), 'inputs', 'gradient_224x224.png');
// A video before an image: the features still hold the image's rows first, then the video's.
const conversation = [
  {
    role: 'user' as const,
    content: [
      { type: 'video' as const, video: frames, fps: 2 },
      { type: 'image' as const, image },
      { type: 'text' as const, text: 'What changes?' },
    ],
  },
];

beforeAll(async () => {
  model = await loadModel(checkpointDir(FAMILY), { threads: 1 });
  other = await loadModel(checkpointDir(FAMILY), { threads: 1 });
  ctx = (model as unknown as Internals).loopContext(new RequestCancel('test'));
  p = await model.prepare(conversation);
});
afterAll(() => {
  model?.dispose();
  other?.dispose();
});

/** Runs `f` and expects it to fail with `code`, whether it throws or rejects. */
async function expectCode(f: () => unknown, code: string, message?: RegExp) {
  const err = await Promise.resolve()
    .then(f)
    .then(
      () => null,
      (e: unknown) => e as { code: string; message: string },
    );
  expect(err, 'expected a failure').not.toBeNull();
  expect(err!.code).toBe(code);
  if (message) expect(err!.message).toMatch(message);
}

describe('vision features handle', () => {
  it('holds the joined rows natively: its counts, and the prefill logits of the copied arrays', async () => {
    const v = (await encodeFeatures(ctx, p))!;
    const arrays = (await encodePrepared(ctx, p))!;
    try {
      expect(v.hidden).toBe(model.config.text.hiddenSize);
      expect(v.imageTokens).toBe(arrays.imageTokens);
      expect(v.imageTokens).toBeGreaterThan(0);
      expect(v.tokens).toBe(arrays.tokens);
      expect(v.tokens).toBeGreaterThan(v.imageTokens);
      expect(v.levels).toBe(arrays.deepstack.length);
      expect(v.levels).toBeGreaterThan(0);
      const run = async (args: NativeForwardArgs) => {
        const s = native.modelNewSession(ctx.handle, p.batchSize, p.seqLength);
        try {
          return new Float32Array((await native.sessionForward(s, args)).logits!.data);
        } finally {
          native.disposeHandle(s);
        }
      };
      // The same features (embeddings and DeepStack levels, same row order) give the same logits, bit for bit.
      const a = await run(prefillArgs(ctx, p, v, 'all'));
      const b = await run(prefillArgs(ctx, p, arrays, 'all'));
      expect(a.length).toBe(b.length);
      let differing = 0;
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differing++;
      expect(differing).toBe(0);
    } finally {
      native.disposeHandle(v.features);
    }
  }, 60_000);

  it('chat and stream never copy vision features to JS, and answer as before', async () => {
    const encode = vi.spyOn(native, 'modelEncodeVision');
    const forward = vi.spyOn(native, 'sessionForward');
    try {
      const a = await model.chat(conversation, { doSample: false, maxTokens: 4 });
      let streamed = '';
      for await (const chunk of model.stream(conversation, { doSample: false, maxTokens: 4 })) streamed += chunk;
      expect(streamed).toBe(a.text);
      expect(encode).not.toHaveBeenCalled();
      const calls = forward.mock.calls.map(([, args]) => args as NativeForwardArgs);
      expect(calls.length).toBeGreaterThan(0);
      for (const args of calls) {
        expect(args.visionEmbeds).toBeUndefined();
        expect(args.deepstack).toBeUndefined();
        for (const value of Object.values(args)) expect(value).not.toBeInstanceOf(Float32Array);
      }
      // The prefills carried the handle: one, as the second request found the features in the
      // model's vision cache (engine.test.ts checks that the uncached handle is freed after use).
      const prefills = calls.filter((c) => c.features !== undefined);
      expect(prefills).toHaveLength(2);
      expect(prefills[1].features).toBe(prefills[0].features);
      // The same tokens as the low-level path: logits() of the prompt picks the first one.
      const logits = (await model.logits(p)).toFloat32();
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      expect(a.tokens[0]).toBe(best);
    } finally {
      encode.mockRestore();
      forward.mockRestore();
    }
  }, 120_000);

  it('refuses a disposed handle, another model\'s handle, a handle of the wrong kind and rows past it', async () => {
    const v = (await encodeFeatures(ctx, p))!;
    const session = native.modelNewSession(ctx.handle, 1, p.seqLength);
    try {
      const args = prefillArgs(ctx, p, v, 'last');
      await expectCode(() => native.sessionForward(session, { ...args, visualRows: new Int32Array(p.seqLength).fill(v.tokens) }), 'E_INPUT', /past the vision embeddings/);
      await expectCode(() => native.sessionForward(session, { ...args, visionEmbeds: new Float32Array(v.hidden) }), 'E_INPUT', /not both/);
      await expectCode(() => native.sessionForward(session, { ...args, features: session as never }), 'E_INPUT', /not a vision features handle/);
      await expectCode(() => native.sessionForward(v.features as never, args), 'E_INPUT', /not a session handle/);
      const otherCtx = (other as unknown as Internals).loopContext(new RequestCancel('test'));
      const w = (await encodeFeatures(otherCtx, p))!;
      try {
        await expectCode(() => native.sessionForward(session, { ...args, features: w.features }), 'E_INPUT', /another model/);
      } finally {
        native.disposeHandle(w.features);
      }
      expect(native.sessionLengths(session)).toEqual([0]); // nothing ran
      native.disposeHandle(v.features);
      native.disposeHandle(v.features); // idempotent
      await expectCode(() => native.sessionForward(session, args), 'E_DISPOSED');
      await expectCode(() => native.modelEncodeFeatures(ctx.handle, {}), 'E_INPUT', /images or videos/);
    } finally {
      native.disposeHandle(v.features);
      native.disposeHandle(session);
    }
  }, 60_000);

  it('a cancelled encode rejects and leaves no handle', async () => {
    const token = native.newCancelToken();
    native.cancelToken(token, 'abort');
    const runs = { images: { pixels: p.pixelValues!, patchDim: p.patchDim, grids: Int32Array.from(p.imageGridThw.flat()) } };
    await expectCode(() => native.modelEncodeFeatures(ctx.handle, runs, token), 'E_ABORTED');
  });

  it('encodeImages still returns the merged embeddings as a tensor', async () => {
    const t = await model.encodeImages([image]);
    expect(t.shape).toEqual([p.imageGridThw.reduce((n, [a, b, c]) => n + (a * b * c) / 4, 0), model.config.text.hiddenSize]);
  }, 60_000);
});
