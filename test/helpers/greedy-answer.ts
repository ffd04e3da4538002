/**
 * The question the checkpoint-layout suites ask every checkpoint they write (one fixture image
 * and a line of text), and `greedyAnswer`, which loads a checkpoint and records its greedy answer
 * and last-position logits so that two checkpoints holding the same weights can be compared.
 */
import { join } from 'node:path';
import { loadModel } from '../../lib/index.js';
import { REPO_FIXTURES } from './fixtures.js';

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
