// Resident memory after loading an official AWQ / GPTQ checkpoint: the packed tensors are unpacked
// into the q4 format at load, and their mapped pages must leave the process as each layer is
// converted; kept, the resident set would hold the language model twice (packed + converted). The
// checkpoints are wide enough (~190 MB of packed decoder weights) for RSS to measure that, and
// their packed words are random: every 4-bit code and AWQ zero point is valid, so only the
// layout matters here (official-quant.test.ts pins the values).
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../../lib/index.js';
import { MODEL_CONFIGS, REPO_FIXTURES } from '../helpers/fixtures.js';
import { loadGrowth } from '../helpers/placement-rss-run.js';
import {
  officialTensors,
  randomWeights,
  scaleConfig,
  scaleSections,
  textSection,
  writeByteLevelFiles,
  writeLayout,
  type Family,
} from '../helpers/layout-checkpoint.js';
import { f32ToF16Bits, type WriterTensors } from '../helpers/safetensors-writer.js';

type Json = Record<string, unknown>;
const work = mkdtempSync(join(tmpdir(), 'qwenvl-official-quant-rss-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;

const QUANTIZED = /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;
const GROUP = 128; // a multiple of the q4 32-blocks: every layer converts to q4 (not f32)
const WIDE = { hidden: 512, heads: 4, inter: 4096, layers: 56 };

/** The published config scaled down, then widened so the decoder's linears dominate. */
function wideConfig(family: Family, official: string): Json {
  const config = scaleConfig(family, json(join(MODEL_CONFIGS, official)));
  const t = textSection(config);
  const sections = ((t.rope_scaling ?? config.rope_scaling) as Json).mrope_section as number[];
  ((t.rope_scaling ?? config.rope_scaling) as Json).mrope_section = scaleSections(sections, WIDE.hidden / WIDE.heads / 2);
  Object.assign(t, { hidden_size: WIDE.hidden, num_attention_heads: WIDE.heads, intermediate_size: WIDE.inter });
  Object.assign(t, { num_hidden_layers: WIDE.layers, max_window_layers: WIDE.layers });
  (config.vision_config as Json)[family === 'qwen2_vl' ? 'hidden_size' : 'out_hidden_size'] = WIDE.hidden;
  return config;
}

const randomI32 = (n: number) => randomFillSync(new Int32Array(n));
/** Small positive f16 scales (finite, as the loader checks). */
function f16Scales(n: number): Uint16Array {
  return f32ToF16Bits(Float32Array.from({ length: n }, (_, i) => 0.004 + (i % 13) * 0.0005));
}

/** One layer's packed tensors in the method's layout (GPTQ: symmetric 4-bit, zero 8 stored as 7). */
function packed(method: 'awq' | 'gptq', out: number, inp: number): WriterTensors {
  const groups = inp / GROUP;
  if (method === 'awq') {
    return {
      qweight: { dtype: 'I32', shape: [inp, out / 8], data: randomI32((inp * out) / 8) },
      qzeros: { dtype: 'I32', shape: [groups, out / 8], data: randomI32((groups * out) / 8) },
      scales: { dtype: 'F16', shape: [groups, out], data: f16Scales(groups * out) },
    };
  }
  const gIdx = new Int32Array(inp).map((_, i) => Math.floor(i / GROUP));
  return {
    qweight: { dtype: 'I32', shape: [inp / 8, out], data: randomI32((inp * out) / 8) },
    qzeros: { dtype: 'I32', shape: [groups, out / 8], data: new Int32Array((groups * out) / 8).fill(0x77777777) },
    scales: { dtype: 'F16', shape: [groups, out], data: f16Scales(groups * out) },
    g_idx: { dtype: 'I32', shape: [inp], data: gIdx },
  };
}

/** q4 as loaded: half a byte per code, an f16 scale and a 4-bit zero point per group of each row. */
const q4Bytes = (out: number, inp: number) => out * (inp / 2) + out * (inp / GROUP) * 2 + out * Math.ceil(inp / GROUP / 2);

interface Written {
  dir: string;
  /** The weights in their loaded formats: the q4 conversions plus every tensor kept as stored. */
  weightBytes: number;
  /** The q4 conversions alone (owned memory, written at load: surely resident). */
  convertedBytes: number;
  packedBytes: number;
}

async function write(method: 'awq' | 'gptq'): Promise<Written> {
  const [family, official]: [Family, string] =
    method === 'awq' ? ['qwen2_5_vl', 'Qwen__Qwen2.5-VL-7B-Instruct-AWQ/config.json'] : ['qwen2_vl', 'Qwen__Qwen2-VL-2B-Instruct/config.reconstructed.json'];
  const config = wideConfig(family, official);
  config.quantization_config =
    method === 'awq'
      ? { ...(config.quantization_config as Json), group_size: GROUP }
      : { bits: 4, group_size: GROUP, desc_act: false, sym: true, quant_method: 'gptq' };
  const shapes = officialTensors(family, config);
  const extra: WriterTensors = {};
  let converted = 0;
  for (const [name, [out, inp]] of shapes) {
    if (!QUANTIZED.test(name)) continue;
    shapes.delete(name);
    for (const [suffix, t] of Object.entries(packed(method, out, inp))) extra[`${name.replace(/\.weight$/, '')}.${suffix}`] = t;
    converted += q4Bytes(out, inp);
  }
  // The embedding table (tied LM head, ~150 MB of f16) as random small f16 values: random bits
  // with a fixed exponent (|x| in [2^-7, 2^-6)), much faster than generating floats.
  const [vocab, hidden] = shapes.get('model.embed_tokens.weight')!;
  shapes.delete('model.embed_tokens.weight');
  const embed = randomFillSync(new Uint16Array(vocab * hidden)).map((b) => (b & 0x83ff) | 0x2000);
  extra['model.embed_tokens.weight'] = { dtype: 'F16', shape: [vocab, hidden], data: embed };
  const dir = join(work, method);
  const files = join(work, `files-${family}`);
  writeByteLevelFiles(join(REPO_FIXTURES, family === 'qwen2_vl' ? 'qwen2-vl' : 'qwen2.5-vl', 'checkpoint'), files);
  await writeLayout(dir, config, randomWeights(shapes, 5), files, { prefixes: 'legacy', sharded: false, dtype: 'F16', extra });
  const st = await openSafetensors(dir);
  let stored = 0;
  let packedBytes = 0;
  for (const [name, t] of st.tensors) {
    if (/\.(qweight|qzeros|scales|g_idx)$/.test(name)) packedBytes += t.byteLength;
    else stored += t.byteLength;
  }
  st.dispose();
  return { dir, weightBytes: converted + stored, convertedBytes: converted, packedBytes };
}

describe('resident memory after loading an official quantized checkpoint', () => {
  it.each(['awq', 'gptq'] as const)('%s: the packed tensors leave memory once converted (within 10 percent)', async (method) => {
    const { dir, weightBytes, convertedBytes, packedBytes } = await write(method);
    expect(packedBytes).toBeGreaterThan(150 * 2 ** 20);
    // The probe of the placement test: the small fixture's loads first (a load's cost besides its
    // weights), then this checkpoint's; 'mmap' keeps the stored tensors as views of the file.
    const { grew, overhead } = await loadGrowth(dir, 'mmap');
    rmSync(dir, { recursive: true, force: true });
    // No KV yet (sessions reserve it on demand). Kept mapped, the packed words would add about
    // their own size (as large as the q4 conversions: the same bits per weight) on top.
    const msg = `grew ${grew}, overhead ${overhead}, weights ${weightBytes}, packed ${packedBytes}`;
    expect(grew - overhead, msg).toBeLessThanOrEqual(1.1 * weightBytes);
    expect(grew, msg).toBeGreaterThan(convertedBytes);
  }, 60_000);
});
