// Faults of the checkpoint, not of the request: each is refused at load with E_MODEL_FORMAT or
// E_UNSUPPORTED naming the file and the field or tensor, instead of loading and then failing
// every request with E_INPUT (or answering garbage). Also: a valid file whose header is not
// padded (tensors at odd addresses) answers exactly like the padded one, values the model itself
// overflows are blamed on the checkpoint, and every loadModel option is type-checked.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, openSafetensors, QwenVLError } from '../../lib/index.js';
import { officialTensors, randomWeights, scaleConfig, writeByteLevelFiles, writeLayout, type LayoutOptions } from '../helpers/layout-checkpoint.js';
import { assembleSafetensors } from '../helpers/safetensors-writer.js';
import { REPO_FIXTURES } from '../helpers/fixtures.js';

const SHARED = REPO_FIXTURES;
const FILES = join(SHARED, 'qwen2-vl/checkpoint');
const IMAGE = join(SHARED, 'qwen2-vl/inputs/gradient_224x224.png');
const official = JSON.parse(readFileSync(join(SHARED, 'model-configs/Qwen__Qwen2-VL-2B-Instruct/config.reconstructed.json'), 'utf8'));
const config = scaleConfig('qwen2_vl', official);
const weights = randomWeights(officialTensors('qwen2_vl', config), 21);
const question = [{ role: 'user', content: [{ type: 'image', image: IMAGE }, { type: 'text', text: 'What is shown?' }] }];

const work = mkdtempSync(join(tmpdir(), 'qwenvl-faults-'));
const BASE = join(work, 'base');
let n = 0;
// The fixture's files with tokenizer.json cut to byte-level symbols and added tokens: fast loads.
const AUX = join(work, 'files');
beforeAll(async () => {
  writeByteLevelFiles(FILES, AUX);
  await writeLayout(BASE, config, weights, AUX, { prefixes: 'legacy', sharded: false, dtype: 'BF16' });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the base checkpoint, with `edit` applied to the parsed JSON of `file`. */
function variant(file?: string, edit?: (json: Record<string, unknown>) => void): string {
  const dir = join(work, `v${n++}`);
  cpSync(BASE, dir, { recursive: true });
  if (file && edit) {
    const json = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    edit(json);
    writeFileSync(join(dir, file), JSON.stringify(json));
  }
  return dir;
}

/** A checkpoint with other weights (one tensor replaced), written as `opts` says. */
async function withWeights(name: string, values: (v: Float32Array) => void, opts: Partial<LayoutOptions> = {}): Promise<string> {
  const dir = join(work, `w${n++}`);
  const edited = new Map(weights);
  const w = edited.get(name)!;
  const copy = Float32Array.from(w.values);
  values(copy);
  edited.set(name, { shape: w.shape, values: copy });
  await writeLayout(dir, config, edited, AUX, { prefixes: 'legacy', sharded: false, dtype: 'BF16', ...opts });
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<QwenVLError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(QwenVLError);
  return e as QwenVLError;
}

async function expectLoadError(dir: string, code: string, ...patterns: RegExp[]): Promise<void> {
  const e = await rejection(loadModel(dir));
  expect(e.code, e.message).toBe(code);
  for (const p of patterns) expect(e.message).toMatch(p);
}

async function answer(dir: string, opts = {}) {
  const model = await loadModel(dir, opts);
  try {
    const chat = await model.chat(question, { doSample: false, maxTokens: 4 });
    const logits = await model.logits(await model.prepare(question));
    return { tokens: chat.tokens, logits: Buffer.from(Float32Array.from(logits.data as Float32Array).buffer) };
  } finally {
    model.dispose();
  }
}

/** The same file with its header unpadded and of odd length: every bf16 tensor lands at an odd address. */
function unpadded(file: string): void {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
  let text = '';
  for (let k = 1; ; k++) {
    header.__metadata__ = { format: 'pt', note: 'x'.repeat(k) };
    text = JSON.stringify(header);
    if (Buffer.byteLength(text) % 2 === 1) break;
  }
  writeFileSync(file, assembleSafetensors(text, buf.subarray(8 + len), { pad: false }));
}

describe('a safetensors header without padding (odd length)', () => {
  it('loads and answers exactly like the padded file', async () => {
    const dir = variant();
    unpadded(join(dir, 'model.safetensors'));
    const st = await openSafetensors(join(dir, 'model.safetensors'));
    try {
      const info = st.tensors.get('model.embed_tokens.weight')!;
      expect((info.byteOffset + 8) % 2).toBe(1); // really misaligned on disk
      const padded = await openSafetensors(join(BASE, 'model.safetensors'));
      expect(Buffer.from(st.get('model.embed_tokens.weight').data.buffer as ArrayBuffer, 0, 64)).toEqual(
        Buffer.from(padded.get('model.embed_tokens.weight').data.buffer as ArrayBuffer, 0, 64),
      );
      padded.dispose();
    } finally {
      st.dispose();
    }
    const want = await answer(BASE);
    const got = await answer(dir);
    expect(got.tokens).toEqual(want.tokens);
    expect(got.logits.equals(want.logits)).toBe(true);
  }, 30_000);
});

describe('non-finite weights', () => {
  it.each([
    ['bf16 NaN', 'BF16', Number.NaN],
    ['f16 overflowing to infinity', 'F16', 1e6],
    ['f32 -infinity', 'F32', Number.NEGATIVE_INFINITY],
  ] as const)('%s: E_MODEL_FORMAT at load naming the tensor and file', async (_, dtype, bad) => {
    const dir = await withWeights('model.layers.1.mlp.down_proj.weight', (v) => { v[37] = bad; }, { dtype });
    await expectLoadError(dir, 'E_MODEL_FORMAT', /model\.safetensors: tensor model\.layers\.1\.mlp\.down_proj\.weight holds a non-finite value/, /element 37/);
  });

  it('checkFinite: false skips the scan; the request then says the checkpoint produced NaN', async () => {
    const dir = await withWeights('model.norm.weight', (v) => { v[3] = Number.NaN; });
    const model = await loadModel(dir, { checkFinite: false });
    try {
      const e = await rejection(model.chat(question, { doSample: false, maxTokens: 2 }));
      expect(e.code).toBe('E_MODEL_FORMAT');
      expect(e.message).toMatch(/checkpoint's weights produced a non-finite value .* in the logits/);
    } finally {
      model.dispose();
    }
  });

  it('finite weights that overflow float32 at run time: the error blames the checkpoint, not the request', async () => {
    const dir = await withWeights('model.norm.weight', (v) => v.fill(3e38), { dtype: 'F32' });
    const model = await loadModel(dir);
    try {
      const e = await rejection(model.chat(question, { doSample: false, maxTokens: 2 }));
      expect(e.code).toBe('E_MODEL_FORMAT');
      expect(e.message).toMatch(/checkpoint's weights produced a non-finite value/);
    } finally {
      model.dispose();
    }
  });

  it("weights too large for q8/q4's f16 scales: E_UNSUPPORTED naming the tensor; as stored they load", async () => {
    // 1e7 in a group: q8's scale 1e7/127 and q4's 2e7/15 pass f16's 65504.
    const name = 'model.layers.0.mlp.down_proj.weight';
    const dir = await withWeights(name, (v) => { v[40] = 1e7; v[41] = -1e7; });
    for (const weights of ['q8', 'q4'] as const) {
      const e = await rejection(loadModel(dir, { weights }));
      expect(e.code, e.message).toBe('E_UNSUPPORTED');
      expect(e.message).toContain(name);
      expect(e.message).toMatch(/scale overflows f16/);
    }
    (await loadModel(dir)).dispose();
  });

  it('an MoE router that overflows: the error names the router, not the request', async () => {
    const moeFiles = join(SHARED, 'qwen3-vl-moe/checkpoint');
    const moeConfig = scaleConfig('qwen3_vl_moe', JSON.parse(readFileSync(join(moeFiles, 'config.json'), 'utf8')));
    const moe = randomWeights(officialTensors('qwen3_vl_moe', moeConfig), 4);
    const norm = moe.get('model.layers.0.post_attention_layernorm.weight')!;
    moe.set('model.layers.0.post_attention_layernorm.weight', { shape: norm.shape, values: new Float32Array(norm.values.length).fill(3e38) });
    const dir = join(work, 'moe');
    writeByteLevelFiles(moeFiles, join(work, 'moe-files'));
    await writeLayout(dir, moeConfig, moe, join(work, 'moe-files'), { prefixes: 'new', sharded: false, dtype: 'F32' });
    const model = await loadModel(dir);
    try {
      const e = await rejection(model.chat(question, { doSample: false, maxTokens: 2 }));
      expect(e.code).toBe('E_MODEL_FORMAT');
      expect(e.message).toMatch(/checkpoint's weights produced a non-finite value .* in the MoE router logits/);
    } finally {
      model.dispose();
    }
  });
});

describe('processor settings that disagree with the vision tower', () => {
  it.each([
    ['patch_size', 16, /preprocessor_config\.json: patch_size 16 disagrees with config\.json vision_config\.patch_size 14/],
    ['merge_size', 4, /preprocessor_config\.json: merge_size 4 disagrees with config\.json vision_config\.spatial_merge_size 2/],
    ['temporal_patch_size', 1, /preprocessor_config\.json: temporal_patch_size 1 disagrees with config\.json vision_config\.temporal_patch_size 2/],
  ] as const)('%s: E_MODEL_FORMAT at load', async (key, value, pattern) => {
    const dir = variant('preprocessor_config.json', (j) => { j[key] = value; });
    await expectLoadError(dir, 'E_MODEL_FORMAT', pattern);
  });

  it('video_preprocessor_config.json: checked too, and named', async () => {
    const dir = variant();
    const pre = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
    writeFileSync(join(dir, 'video_preprocessor_config.json'), JSON.stringify({ ...pre, merge_size: 1 }));
    await expectLoadError(dir, 'E_MODEL_FORMAT', /video_preprocessor_config\.json: merge_size 1 disagrees with config\.json vision_config\.spatial_merge_size 2/);
  });
});

describe('special tokens', () => {
  it('a tokenizer without <|image_pad|>: E_MODEL_FORMAT naming tokenizer.json and image_token_id', async () => {
    const dir = variant('tokenizer.json', (j) => {
      j.added_tokens = (j.added_tokens as { content: string }[]).filter((t) => t.content !== '<|image_pad|>');
    });
    const cfgFile = join(dir, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    delete cfg.added_tokens_decoder['151655'];
    writeFileSync(cfgFile, JSON.stringify(cfg));
    await expectLoadError(dir, 'E_MODEL_FORMAT', /tokenizer\.json: config\.json image_token_id is 151655.*<\|image_pad\|> is missing/);
  });

  it("a config whose video_token_id is another token: names the tokenizer's id for <|video_pad|>", async () => {
    const dir = variant('config.json', (j) => { j.video_token_id = 151654; });
    await expectLoadError(dir, 'E_MODEL_FORMAT', /video_token_id is 151654, but the tokenizer's token 151654 is "<\|vision_pad\|>" and <\|video_pad\|> is id 151656/);
  });
});

describe('activations the kernels lack', () => {
  it('text hidden_act other than silu: E_UNSUPPORTED naming config.json and the field', async () => {
    const dir = variant('config.json', (j) => { j.hidden_act = 'gelu'; });
    await expectLoadError(dir, 'E_UNSUPPORTED', /config\.json: hidden_act "gelu" is not supported/);
  });

  it('vision hidden_act unknown: E_UNSUPPORTED naming vision_config.hidden_act', async () => {
    const dir = variant('config.json', (j) => { (j.vision_config as Record<string, unknown>).hidden_act = 'relu'; });
    await expectLoadError(dir, 'E_UNSUPPORTED', /vision_config\.hidden_act "relu" is not supported/);
  });
});

describe('loadModel options', () => {
  it.each([
    [{ maxInputPixels: 0 }, /options\.maxInputPixels: expected an integer in \[1, \d+\], got number 0/],
    [{ maxInputPixels: 1.5 }, /maxInputPixels/],
    [{ threads: '2' }, /options\.threads: expected an integer in \[1, 1024\], got the string "2"/],
    [{ threads: 0 }, /threads/],
    [{ maxVisualTokens: -1 }, /maxVisualTokens/],
    [{ maxMemoryBytes: Number.NaN }, /maxMemoryBytes/],
    [{ contextLength: 1 }, /contextLength/],
    [{ contextLength: '4096' }, /contextLength/],
    [{ device: 'cuda' }, /device/],
    [{ onProgress: 5 }, /options\.onProgress: expected a function, got number 5/],
    [{ checkFinite: 'yes' }, /options\.checkFinite: expected a boolean, got the string "yes"/],
    [null, /options: expected an options object, got null/],
    [[], /options: expected an options object, got an array/],
  ])('%j: E_INPUT naming the option', async (options, pattern) => {
    const e = await rejection(loadModel(BASE, options as never));
    expect(e.code).toBe('E_INPUT');
    expect(e.message).toMatch(pattern);
  });
});
