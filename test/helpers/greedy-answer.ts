/**
 * The question the checkpoint-layout suites ask every checkpoint they write (one fixture image
 * and a line of text), and `greedyAnswer`, which loads a checkpoint and records its greedy answer
 * and last-position logits so that two checkpoints holding the same weights can be compared
 * (`expectSameAnswer`); `loadError` for the checkpoints they write to be refused.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { loadModel, QwenVLError } from '../../lib/index.js';
import { REPO_FIXTURES } from './fixtures.js';
import { maxRelDiff } from './logit-agreement.js';

const IMAGE = join(REPO_FIXTURES, 'qwen2-vl/inputs/gradient_224x224.png');

/** A user turn with the gradient fixture image and a short question about it. */
export const IMAGE_QUESTION = [
  { role: 'user' as const, content: [{ type: 'image' as const, image: IMAGE }, { type: 'text' as const, text: 'What is shown?' }] },
];

/** Loads a checkpoint and answers: greedy tokens about an image and the last-position logits. */
export async function greedyAnswer(dir: string): Promise<{ tokens: number[]; logits: Float32Array }> {
  const model = await loadModel(dir);
  try {
    const chat = await model.chat(IMAGE_QUESTION, { doSample: false, maxTokens: 4 });
    const logits = await model.logits(await model.prepare(IMAGE_QUESTION));
    return { tokens: chat.tokens, logits: Float32Array.from(logits.data as Float32Array) };
  } finally {
    model.dispose();
  }
}

/**
 * Checkpoint `dir` answers like `refDir`: the same greedy tokens, finite logits, and the largest
 * logit difference within `tolerance` of the reference's largest |logit|. Returns that ratio.
 */
export async function expectSameAnswer(dir: string, refDir: string, tolerance: number): Promise<number> {
  const got = await greedyAnswer(dir);
  const want = await greedyAnswer(refDir);
  expect(got.tokens.length).toBeGreaterThan(0);
  expect(got.tokens).toEqual(want.tokens);
  expect(got.logits.every(Number.isFinite)).toBe(true);
  const rel = maxRelDiff(want.logits, got.logits);
  expect(rel).toBeLessThanOrEqual(tolerance);
  return rel;
}

/** The typed error loading `dir` fails with (the test fails if it loads). */
export async function loadError(dir: string): Promise<QwenVLError> {
  const err = await loadModel(dir).then(
    (m) => {
      m.dispose();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QwenVLError);
  return err as QwenVLError;
}
