/**
 * A synthetic checkpoint with Qwen2-VL-2B's real widths (text 1536/8960, 12 heads, 2 KV heads, vocab
 * 151936; vision 1280 wide, 16 heads) but only a few layers, written tensor by tensor in bf16 next to
 * a tokenizer and processor files copied from another checkpoint folder. The benchmarks time it;
 * its values do not matter.
 * @internal
 * @module
 */
import { copyFile, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEXT = { hidden: 1536, heads: 12, kv: 2, headDim: 128, inter: 8960, vocab: 151936 };
export const VISION = { embed: 1280, heads: 16, mlpRatio: 4, patch: 14, merge: 2, temporal: 2 };

/** Small random bf16 values (|x| in [2^-7, 2^-5)); the timing does not depend on them. */
function randomBf16(n: number, seed: number): Uint16Array {
  const out = new Uint16Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s & 0x8000) | ((0x78 + (s % 3)) << 7) | ((s >>> 8) & 0x7f);
  }
  return out;
}

/** The language model's widths of a synthetic checkpoint (default {@link TEXT}). */
export type TextWidths = typeof TEXT;

function tensorList(layers: number, depth: number, text: TextWidths): [string, number[]][] {
  const { hidden: H, kv, headDim: D, heads, inter: I, vocab: V } = text;
  const t: [string, number[]][] = [['model.embed_tokens.weight', [V, H]], ['model.norm.weight', [H]]];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      [`${p}input_layernorm.weight`, [H]],
      [`${p}post_attention_layernorm.weight`, [H]],
      [`${p}self_attn.q_proj.weight`, [heads * D, H]],
      [`${p}self_attn.q_proj.bias`, [heads * D]],
      [`${p}self_attn.k_proj.weight`, [kv * D, H]],
      [`${p}self_attn.k_proj.bias`, [kv * D]],
      [`${p}self_attn.v_proj.weight`, [kv * D, H]],
      [`${p}self_attn.v_proj.bias`, [kv * D]],
      [`${p}self_attn.o_proj.weight`, [H, heads * D]],
      [`${p}mlp.gate_proj.weight`, [I, H]],
      [`${p}mlp.up_proj.weight`, [I, H]],
      [`${p}mlp.down_proj.weight`, [H, I]],
    );
  }
  const E = VISION.embed, VI = E * VISION.mlpRatio, M = E * VISION.merge ** 2;
  t.push(['visual.patch_embed.proj.weight', [E, 3, VISION.temporal, VISION.patch, VISION.patch]]);
  for (let b = 0; b < depth; b++) {
    const p = `visual.blocks.${b}.`;
    t.push(
      [`${p}norm1.weight`, [E]], [`${p}norm1.bias`, [E]], [`${p}norm2.weight`, [E]], [`${p}norm2.bias`, [E]],
      [`${p}attn.qkv.weight`, [3 * E, E]], [`${p}attn.qkv.bias`, [3 * E]],
      [`${p}attn.proj.weight`, [E, E]], [`${p}attn.proj.bias`, [E]],
      [`${p}mlp.fc1.weight`, [VI, E]], [`${p}mlp.fc1.bias`, [VI]],
      [`${p}mlp.fc2.weight`, [E, VI]], [`${p}mlp.fc2.bias`, [E]],
    );
  }
  t.push(
    ['visual.merger.ln_q.weight', [E]], ['visual.merger.ln_q.bias', [E]],
    ['visual.merger.mlp.0.weight', [M, M]], ['visual.merger.mlp.0.bias', [M]],
    ['visual.merger.mlp.2.weight', [H, M]], ['visual.merger.mlp.2.bias', [H]],
  );
  return t;
}

/** Writes a safetensors file tensor by tensor (bf16), without holding it all in memory. */
async function writeCheckpoint(file: string, tensors: [string, number[]][]): Promise<number> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fh = await open(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    await fh.write(len);
    await fh.write(Buffer.from(json));
    let seed = 1;
    for (const [name, shape] of tensors) {
      const n = shape.reduce((a, b) => a * b, 1);
      // Norm scales near 1 keep activations in range; everything else small and random.
      const data = name.includes('norm') || name.includes('ln_q') ? new Uint16Array(n).fill(0x3f80) : randomBf16(n, seed++);
      await fh.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    await fh.close();
  }
  return offset;
}

/** A written synthetic checkpoint: its folder, size, and how to remove it. */
export interface SyntheticCheckpoint {
  dir: string;
  bytes: number;
  writeSeconds: number;
  remove(): Promise<void>;
}

/** The files copied from the tokenizer folder: a Qwen2-VL tokenizer, chat template and processor. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.json', 'preprocessor_config.json', 'generation_config.json'];

/**
 * Writes a checkpoint of `layers` decoder layers and `depth` vision blocks into a temporary folder,
 * with {@link TOKENIZER_FILES} copied from `tokenizerDir` (a Qwen2-VL checkpoint folder). `text`
 * narrows the language model (e.g. a smaller hidden size for a checkpoint of a few hundred MB).
 */
export async function writeSyntheticCheckpoint(layers: number, depth: number, tokenizerDir: string, text: TextWidths = TEXT): Promise<SyntheticCheckpoint> {
  const dir = await mkdtemp(join(tmpdir(), 'qwenvl-bench-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    for (const f of TOKENIZER_FILES) await copyFile(join(tokenizerDir, f), join(dir, f));
    const config = {
      architectures: ['Qwen2VLForConditionalGeneration'], model_type: 'qwen2_vl',
      hidden_size: text.hidden, intermediate_size: text.inter, num_attention_heads: text.heads,
      num_key_value_heads: text.kv, num_hidden_layers: layers, vocab_size: text.vocab, rms_norm_eps: 1e-6,
      rope_theta: 1e6, max_position_embeddings: 32768, tie_word_embeddings: true, hidden_act: 'silu',
      bos_token_id: 151643, eos_token_id: 151645, vision_start_token_id: 151652, vision_end_token_id: 151653,
      vision_token_id: 151654, image_token_id: 151655, video_token_id: 151656,
      rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
      vision_config: { depth, embed_dim: VISION.embed, mlp_ratio: VISION.mlpRatio, num_heads: VISION.heads, in_chans: 3,
        hidden_size: text.hidden, patch_size: VISION.patch, spatial_merge_size: VISION.merge, temporal_patch_size: VISION.temporal },
    };
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    const t0 = performance.now();
    const bytes = await writeCheckpoint(join(dir, 'model.safetensors'), tensorList(layers, depth, text));
    return { dir, bytes, writeSeconds: (performance.now() - t0) / 1000, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

/** Seconds `fn` takes, with its result. */
export async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}
