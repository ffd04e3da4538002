// Qwen2-VL end to end on the fixture checkpoint: chat, stream, abort, the event loop staying
// free, and every bad input getting its typed error.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, Model, openSafetensors, QwenVLError } from '../../lib/index.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { writeSafetensors, type WriterTensors } from '../helpers/safetensors-writer.js';

const FIX = fixtureDir('qwen2-vl');
const CKPT = join(FIX, 'checkpoint');
const IMG = join(FIX, 'inputs/gradient_224x224.png');

async function expectCode(p: Promise<unknown> | (() => unknown), code: string, match?: RegExp): Promise<QwenVLError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(QwenVLError);
    expect((e as QwenVLError).code).toBe(code);
    if (match) expect((e as QwenVLError).message).toMatch(match);
    return e as QwenVLError;
  }
  throw new Error(`expected ${code}`);
}

let model: Model;
beforeAll(async () => {
  model = await loadModel(CKPT);
});
afterAll(() => model?.dispose());

const ask = (text: string, image = true) => [
  { role: 'user', content: [...(image ? [{ type: 'image', image: IMG }] : []), { type: 'text', text }] },
];

/** The checkpoint in dir loads (passing `check`, if given) and answers greedily as the fixture does. */
async function expectSameAnswer(dir: string, check?: (m: Model) => void): Promise<void> {
  const m = await loadModel(dir);
  try {
    check?.(m);
    const a = await model.chat(ask('What is shown?'), { doSample: false, maxTokens: 5 });
    const b = await m.chat(ask('What is shown?'), { doSample: false, maxTokens: 5 });
    expect(b.tokens).toEqual(a.tokens);
  } finally {
    m.dispose();
  }
}

describe('Qwen2-VL chat', () => {
  it('answers about an image greedily and deterministically', async () => {
    const a = await model.chat(ask('What is shown?'), { doSample: false, maxTokens: 6 });
    const b = await model.chat(ask('What is shown?'), { doSample: false, maxTokens: 6 });
    expect(a.tokens).toHaveLength(6);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.finishReason).toBe('length');
    expect(a.usage.completionTokens).toBe(6);
    expect(a.usage.promptTokens).toBeGreaterThan(64); // 64 image tokens for 224x224
    expect(a.text).toBe(model.tokenizer.decode(a.tokens, { skipSpecialTokens: true }));
  });

  it('reproduces a sampled run from its seed, and different seeds differ', async () => {
    // The checkpoint's defaults (top_k 1, top_p 0.001) are near-greedy; open them up.
    const o = { doSample: true, temperature: 1.5, topK: 50, topP: 1, maxTokens: 8 };
    const a = await model.chat(ask('Hi', false), { ...o, seed: 7 });
    const b = await model.chat(ask('Hi', false), { ...o, seed: 7 });
    const c = await model.chat(ask('Hi', false), { ...o, seed: 8 });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('streams chunks that join to the chat text', async () => {
    const chunks: string[] = [];
    for await (const c of model.stream(ask('Describe'), { doSample: false, maxTokens: 8 })) chunks.push(c);
    const full = await model.chat(ask('Describe'), { doSample: false, maxTokens: 8 });
    expect(chunks.join('')).toBe(full.text);
  });

  it('stops at a stop string without returning it', async () => {
    const full = await model.chat(ask('Describe'), { doSample: false, maxTokens: 10 });
    const cut = full.text.slice(3, 6);
    expect(cut.length).toBeGreaterThan(0);
    const r = await model.chat(ask('Describe'), { doSample: false, maxTokens: 10, stop: cut });
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(full.text.slice(0, full.text.indexOf(cut)));
  });

  it('keeps the event loop free: a timer fires during generation', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await model.chat(ask('Tell me more'), { doSample: false, maxTokens: 24 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });

  it('abort resolves with the partial text and finishReason "abort"', async () => {
    const ac = new AbortController();
    let n = 0;
    const chunks: string[] = [];
    for await (const c of model.stream(ask('Go on', false), { doSample: false, maxTokens: 200, signal: ac.signal })) {
      chunks.push(c);
      if (++n === 2) ac.abort();
    }
    expect(n).toBeLessThan(200);
    const r = await model.chat(ask('Go on', false), { maxTokens: 50, signal: AbortSignal.abort() });
    expect(r.finishReason).toBe('abort');
    expect(r.tokens).toEqual([]);
  });

  it('a consumer that stops iterating stops the generation', async () => {
    let ticks = 0;
    for await (const c of model.stream(ask('Go on', false), { doSample: false, maxTokens: 5000 })) {
      expect(typeof c).toBe('string');
      if (++ticks === 1) break;
    }
    // The loop above returns only once the generation has wound down; a fresh call still works.
    const r = await model.chat(ask('x', false), { doSample: false, maxTokens: 2 });
    expect(r.tokens).toHaveLength(2);
  });

  it('runs a batch of prompts with left padding', async () => {
    const rs = await model.chat([ask('What is shown?'), ask('Hello there, tell me a story', false)], { doSample: false, maxTokens: 4 });
    expect(rs).toHaveLength(2);
    const single = await model.chat(ask('Hello there, tell me a story', false), { doSample: false, maxTokens: 4 });
    expect(rs[1].tokens).toEqual(single.tokens);
  });

  it('accepts Buffers and data: URLs as images', async () => {
    const bytes = readFileSync(IMG);
    const url = `data:image/png;base64,${bytes.toString('base64')}`;
    const a = await model.chat(ask('x'), { doSample: false, maxTokens: 3 });
    const b = await model.chat([{ role: 'user', content: [{ type: 'image', image: bytes }, { type: 'text', text: 'x' }] }], { doSample: false, maxTokens: 3 });
    const c = await model.chat([{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'x' }] }], { doSample: false, maxTokens: 3 });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).toEqual(a.tokens);
  });

  it('encodeImages and logits give tensors of the documented shapes', async () => {
    const t = await model.encodeImages([IMG]);
    expect(t.shape).toEqual([64, model.config.text.hiddenSize]);
    const p = await model.prepare(ask('x'));
    const l = await model.logits(p);
    expect(l.shape).toEqual([1, model.config.text.vocabSize]);
  });
});

describe('checkpoint layouts', () => {
  it('the nested text_config layout of newer transformers gives the same answer as the flat one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-nested-'));
    try {
      cpSync(CKPT, dir, { recursive: true });
      const flat = JSON.parse(readFileSync(join(CKPT, 'config.json'), 'utf8')) as Record<string, unknown>;
      const top = ['architectures', 'model_type', 'vision_config', 'image_token_id', 'video_token_id',
        'vision_start_token_id', 'vision_end_token_id', 'vision_token_id', 'tie_word_embeddings', 'transformers_version'];
      const nested: Record<string, unknown> = { text_config: { model_type: 'qwen2_vl_text' } };
      for (const [k, v] of Object.entries(flat)) {
        if (top.includes(k)) nested[k] = v;
        else (nested.text_config as Record<string, unknown>)[k] = v;
      }
      writeFileSync(join(dir, 'config.json'), JSON.stringify(nested));
      await expectSameAnswer(dir, (m) => expect(m.config.layout).toBe('nested'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('weight key layouts', () => {
  it('newer transformers key names (model.language_model.*, model.visual.*) load and answer the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-keys-'));
    try {
      cpSync(CKPT, dir, { recursive: true });
      const src = await openSafetensors(join(CKPT, 'model.safetensors'));
      const renamed: WriterTensors = {};
      for (const [name, info] of src.tensors) {
        const t = src.get(name);
        const key = name.startsWith('visual.') ? `model.${name}` : name.replace(/^model\./, 'model.language_model.');
        renamed[key] = { dtype: info.dtype.toUpperCase(), shape: [...info.shape], data: t.data };
      }
      src.dispose();
      await writeSafetensors(join(dir, 'model.safetensors'), renamed);
      await expectSameAnswer(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('token budgets', () => {
  it('estimateTokens counts vision and text tokens before running', async () => {
    const e = await model.estimateTokens(ask('What is shown?'), { maxTokens: 10 });
    expect(e.imageTokens).toBe(64);
    expect(e.videoTokens).toBe(0);
    const p = await model.prepare(ask('What is shown?'));
    expect(e.imageTokens + e.textTokens).toBe(p.seqLength);
    expect(e.memoryBytes).toBeGreaterThan(0);
  });

  it('refuses a request over the vision-token or memory budget with E_INPUT naming the option', async () => {
    const small = await loadModel(CKPT, { maxVisualTokens: 32 });
    try {
      await expectCode(small.chat(ask('x')), 'E_INPUT', /64 vision tokens, over the budget of 32.*maxVisualTokens/);
      expect((await small.chat(ask('x', false), { doSample: false, maxTokens: 2 })).tokens).toHaveLength(2);
    } finally {
      small.dispose();
    }
    const tight = await loadModel(CKPT, { maxMemoryBytes: 1024 });
    try {
      await expectCode(tight.chat(ask('x', false)), 'E_INPUT', /maxMemoryBytes/);
    } finally {
      tight.dispose();
    }
  });

  it('reports load progress up to ready', async () => {
    const stages: string[] = [];
    const m = await loadModel(CKPT, { onProgress: (p) => stages.push(p.stage) });
    m.dispose();
    expect(stages[0]).toBe('config');
    expect(stages.at(-1)).toBe('ready');
  });
});

describe('Qwen2-VL bad input', () => {
  it('undecodable bytes, zero-size data, missing file', async () => {
    await expectCode(model.chat([{ role: 'user', content: [{ type: 'image', image: Buffer.from('not an image') }] }]), 'E_INPUT');
    await expectCode(model.chat([{ role: 'user', content: [{ type: 'image', image: new Uint8Array(0) }] }]), 'E_INPUT');
    await expectCode(model.chat([{ role: 'user', content: [{ type: 'image', image: '/nonexistent/x.png' }] }]), 'E_INPUT', /nonexistent/);
  });

  it('empty messages and unknown part types', async () => {
    await expectCode(model.chat([]), 'E_INPUT');
    await expectCode(model.chat([{ role: 'user', content: [{ type: 'audio', audio: 'x' }] }]), 'E_INPUT', /unknown part type 'audio'/);
  });

  it('bad generation options', async () => {
    await expectCode(model.chat(ask('x', false), { maxTokens: 0 }), 'E_INPUT', /maxTokens/);
    await expectCode(model.chat(ask('x', false), { topP: 2 }), 'E_INPUT', /topP/);
  });

  it('a prompt longer than the context: E_CONTEXT_OVERFLOW with both numbers', async () => {
    const small = await loadModel(CKPT, { contextLength: 40 });
    try {
      const e = await expectCode(small.chat(ask('x')), 'E_CONTEXT_OVERFLOW');
      expect(e.message).toMatch(/\b\d+ tokens\b.*\b40\b/);
    } finally {
      small.dispose();
    }
  });

  it('more image parts than the chat template places', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-tpl-'));
    try {
      cpSync(CKPT, dir, { recursive: true });
      const tpl = "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
      writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: tpl }));
      const m = await loadModel(dir);
      try {
        await expectCode(m.chat(ask('x')), 'E_INPUT', /1 image part\(s\) but the chat template placed 0/);
      } finally {
        m.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('calls after dispose: E_DISPOSED', async () => {
    const m = await loadModel(CKPT);
    m.dispose();
    expect(m.disposed).toBe(true);
    await expectCode(m.chat(ask('x', false)), 'E_DISPOSED');
    await expectCode(m.encodeImages([IMG]), 'E_DISPOSED');
  });

  it('unknown model type: E_UNSUPPORTED listing the supported ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-mt-'));
    try {
      cpSync(CKPT, dir, { recursive: true });
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      cfg.model_type = 'llava';
      writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
      await expectCode(loadModel(dir), 'E_UNSUPPORTED', /qwen2_vl/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
