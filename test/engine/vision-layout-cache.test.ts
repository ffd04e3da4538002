// The vision tower keeps the layouts (2-D RoPE tables, window order) of its last few grid lists.
// A hit must give what a fresh tower computes, after misses and evictions: the same image list
// encoded on a warm model and on a fresh one is bit-identical.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';

const bits = (t: { data: unknown }) => Buffer.from((t.data as Float32Array).buffer).toString('base64');

// Qwen2.5-VL: window attention (order and bounds cached); Qwen3-VL: learned position embeddings.
describe.each(['qwen2.5-vl', 'qwen3-vl'])('%s vision layout cache', (family) => {
  it('hits, misses and evictions give the fresh tower\'s result bit for bit', async () => {
    const root = family === 'qwen3-vl' ? fixtureDir('qwen2.5-vl') : fixtureDir(family);
    const A = join(root, 'inputs/gradient_224x224.png');
    const B = join(root, 'inputs/stripes_300x200.png');
    const warm = await loadModel(checkpointDir(family));
    const fresh = await loadModel(checkpointDir(family));
    try {
      const first = await warm.encodeImages([A]);
      // Six grid lists: more than the cache keeps, so [A]'s layout is evicted and rebuilt.
      for (const list of [[B], [A, B], [B, A], [A, A], [B, B], [A]]) await warm.encodeImages(list);
      expect(bits(await warm.encodeImages([A]))).toBe(bits(first));
      expect(bits(await warm.encodeImages([B, A]))).toBe(bits(await fresh.encodeImages([B, A])));
      expect(bits(await warm.encodeImages([A, B]))).toBe(bits(await fresh.encodeImages([A, B])));
    } finally {
      warm.dispose();
      fresh.dispose();
    }
  }, 120_000);
});
