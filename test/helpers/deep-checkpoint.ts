/**
 * A deeper copy of the Qwen2-VL fixture checkpoint for timing tests: the fixture's widths,
 * tokenizer and processor, but `layers` decoder layers and `depth` vision blocks, each a copy of
 * one of the fixture's own layers (real tensor names and values, nothing random). Many cheap
 * layers make a long prefill whose single layer is short, which is what cancellation tests need.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../../lib/index.js';
import { writeSafetensors, type WriterTensors } from './safetensors-writer.js';
import { checkpointDir } from './fixtures.js';

/** The fixture checkpoint the deep copy is made from. */
export const FIXTURE_CHECKPOINT = checkpointDir('qwen2-vl');

/** Writes the deep checkpoint into a fresh temporary folder; `remove()` deletes it. */
export async function writeDeepCheckpoint(layers: number, depth: number): Promise<{ dir: string; remove: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'qwenvl-deep-'));
  cpSync(FIXTURE_CHECKPOINT, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(FIXTURE_CHECKPOINT, 'config.json'), 'utf8')) as Record<string, unknown>;
  const srcLayers = config.num_hidden_layers as number;
  const vision = config.vision_config as Record<string, unknown>;
  const srcDepth = vision.depth as number;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: layers, max_window_layers: layers, vision_config: { ...vision, depth } }));

  const src = await openSafetensors(join(FIXTURE_CHECKPOINT, 'model.safetensors'));
  try {
    const out: WriterTensors = {};
    for (const [name, info] of src.tensors) {
      const t = { dtype: info.dtype.toUpperCase(), shape: [...info.shape], data: src.get(name).data };
      const layer = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
      const block = /^visual\.blocks\.(\d+)\.(.*)$/.exec(name);
      if (layer) {
        for (let l = Number(layer[1]); l < layers; l += srcLayers) out[`model.layers.${l}.${layer[2]}`] = t;
      } else if (block) {
        for (let b = Number(block[1]); b < depth; b += srcDepth) out[`visual.blocks.${b}.${block[2]}`] = t;
      } else {
        out[name] = t;
      }
    }
    await writeSafetensors(join(dir, 'model.safetensors'), out);
  } finally {
    src.dispose();
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
