// loadModel's `weightCache`: converted weights are written once next to the checkpoint (or in a
// named folder), read back bit for bit by the next load, and a corrupt, truncated or stale file is
// never trusted: it is detected and rewritten in place.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Conversation, loadModel, type LoadOptions, type Model, QwenVLError } from '../../lib/index.js';
import { userWeightCacheDir, weightCachePlan } from '../../lib/model/weight-cache.js';
import { native } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { moeConfig, moeWeights, writeMoeCheckpoint } from '../helpers/moe-checkpoint.js';

const ask: Conversation = [{ role: 'user', content: [{ type: 'text', text: 'Say something.' }] }];

let dir: string;
let other: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'qwenvl-cache-'));
  cpSync(checkpointDir('qwen2-vl'), dir, { recursive: true });
  other = mkdtempSync(join(tmpdir(), 'qwenvl-cache-dir-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

const status = (m: Model) => native.modelWeightFormat((m as unknown as { handle: Parameters<typeof native.modelWeightFormat>[0] }).handle);
const cacheFiles = (d: string) => readdirSync(d).filter((f) => f.endsWith('.weights'));

/** Loads, returns the cache status and the logits' bytes of a fixed prompt. */
async function run(options: LoadOptions): Promise<{ cache: string; format: string; logits: Buffer }> {
  const m = await loadModel(dir, options);
  try {
    const l = await m.logits(await m.prepare(ask));
    const data = l.data as Float32Array;
    return { ...status(m), logits: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
  } finally {
    m.dispose();
  }
}

describe('weightCache', () => {
  it('writes next to the checkpoint, then reads the same weights back', async () => {
    const first = await run({ weights: 'q4', weightCache: true });
    expect(first).toMatchObject({ cache: 'written', format: 'q4' });
    const files = cacheFiles(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^qwenvl-q4-stored-[0-9a-f]{16}\.weights$/);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const second = await run({ weights: 'q4', weightCache: true });
    expect(second.cache).toBe('hit');
    expect(second.logits.equals(first.logits)).toBe(true);

    // Corrupt bytes in the weights, then a truncated file: both detected, rebuilt, same answer.
    const path = join(dir, files[0]);
    const bytes = readFileSync(path);
    bytes[bytes.length - 1000] ^= 0x5a;
    writeFileSync(path, bytes);
    const corrupt = await run({ weights: 'q4', weightCache: true });
    expect(corrupt.cache).toBe('written');
    expect(corrupt.logits.equals(first.logits)).toBe(true);
    writeFileSync(path, readFileSync(path).subarray(0, 5000));
    expect((await run({ weights: 'q4', weightCache: true })).cache).toBe('written');
    writeFileSync(path, 'not a cache');
    expect((await run({ weights: 'q4', weightCache: true })).cache).toBe('written');
    expect((await run({ weights: 'q4', weightCache: true })).cache).toBe('hit');
    expect(statSync(path).size).toBeGreaterThan(1 << 20);
  });

  it('refuses files of the previous layout versions (row-major q8/q4; f32 scales) and rewrites them', async () => {
    expect((await run({ weights: 'q4', weightCache: true })).cache).toBe('hit');
    const path = join(dir, cacheFiles(dir).find((f) => f.startsWith('qwenvl-q4-'))!);
    // Header: 16 bytes of magic, then the layout version (u64 little-endian): 4 since entries name their source tensors.
    expect(readFileSync(path).readBigUInt64LE(16)).toBe(4n);
    for (const version of [3n, 2n, 1n]) {
      const bytes = readFileSync(path);
      bytes.writeBigUInt64LE(version, 16);
      writeFileSync(path, bytes);
      const old = await run({ weights: 'q4', weightCache: true });
      expect(old.cache).toBe('written');
      expect(readFileSync(path).readBigUInt64LE(16)).toBe(4n);
    }
    expect((await run({ weights: 'q4', weightCache: true })).cache).toBe('hit');
  });

  it('keys files by format and checkpoint file identity; a stale file is replaced, not kept beside', async () => {
    const before = cacheFiles(dir).length;
    expect((await run({ weights: 'q8', weightCache: true })).cache).toBe('written');
    expect(cacheFiles(dir)).toHaveLength(before + 1);
    // A rewritten checkpoint (new mtime) never reads the old file, and its file takes the old one's place.
    const st = join(dir, 'model.safetensors');
    const t = new Date(Date.now() + 5000);
    utimesSync(st, t, t);
    const mtimeMs = statSync(st).mtimeMs;
    expect((await run({ weights: 'q8', weightCache: true })).cache).toBe('written');
    expect(cacheFiles(dir)).toHaveLength(before + 1);
    expect((await run({ weights: 'q8', weightCache: true })).cache).toBe('hit');
    // Rewritten with the same size and its modification time set back (as a copy preserving
    // timestamps leaves it): the change time still differs, so the file is not trusted.
    writeFileSync(st, readFileSync(st));
    utimesSync(st, t, t);
    expect(statSync(st).mtimeMs).toBe(mtimeMs);
    expect((await run({ weights: 'q8', weightCache: true })).cache).toBe('written');
    expect(cacheFiles(dir)).toHaveLength(before + 1);
    expect((await run({ weights: 'q8', weightCache: true })).cache).toBe('hit');
  });

  it('uses a named folder, one file per checkpoint there; does nothing for weights as stored', async () => {
    expect((await run({ weights: 'q8', weightCache: other })).cache).toBe('written');
    expect(cacheFiles(other)).toHaveLength(1);
    expect((await run({ weights: 'q8', weightCache: other })).cache).toBe('hit');
    // A copy of the checkpoint elsewhere (same file names) gets a file of its own in the shared folder.
    const copy = mkdtempSync(join(tmpdir(), 'qwenvl-cache-copy-'));
    try {
      cpSync(dir, copy, { recursive: true, filter: (f) => !f.endsWith('.weights') });
      const copyLoad = async () => {
        const m = await loadModel(copy, { weights: 'q8', weightCache: other });
        try {
          return status(m).cache;
        } finally {
          m.dispose();
        }
      };
      expect(await copyLoad()).toBe('written');
      expect(cacheFiles(other)).toHaveLength(2);
      expect(await copyLoad()).toBe('hit');
      expect((await run({ weights: 'q8', weightCache: other })).cache).toBe('hit');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
    const n = cacheFiles(dir).length;
    expect((await run({ weightCache: true })).cache).toBe('none');
    expect(cacheFiles(dir)).toHaveLength(n);
  });

  it('holds the routed experts of a MoE checkpoint: the second load reads them from the file', async () => {
    // A generated MoE checkpoint whose expert projections are whole q4 groups (hidden 64,
    // moe_intermediate 64), so every layer's gate_up and down experts are converted and cached.
    const moe = mkdtempSync(join(tmpdir(), 'qwenvl-cache-moe-'));
    try {
      const config = moeConfig({ hidden: 64, headDim: 32, layers: 2, experts: 16, topK: 4, moeIntermediate: 64 });
      await writeMoeCheckpoint(join(moe, 'ckpt'), config, moeWeights(config, 3), join(moe, 'files'));
      const load = async (): Promise<{ cache: string; logits: Buffer }> => {
        const m = await loadModel(join(moe, 'ckpt'), { weights: 'q4', weightCache: true });
        try {
          const data = (await m.logits(await m.prepare(ask))).data as Float32Array;
          return { cache: status(m).cache, logits: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
        } finally {
          m.dispose();
        }
      };
      const first = await load();
      expect(first.cache).toBe('written');
      const [file] = cacheFiles(join(moe, 'ckpt'));
      const bytes = readFileSync(join(moe, 'ckpt', file));
      for (let l = 0; l < 2; l++) {
        for (const t of ['gate_up_proj', 'down_proj']) expect(bytes.includes(`model.language_model.layers.${l}.mlp.experts.${t}`)).toBe(true);
      }
      const second = await load();
      expect(second.cache).toBe('hit');
      expect(second.logits.equals(first.logits)).toBe(true);
    } finally {
      rmSync(moe, { recursive: true, force: true });
    }
  });

  it('the user cache folder follows XDG_CACHE_HOME', () => {
    expect(userWeightCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/qwenvl/weights');
    expect(userWeightCacheDir({})).toMatch(/\.cache\/qwenvl\/weights$/);
  });

  it('a Hub snapshot folder is never written: its files go to the user cache folder', async () => {
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = other;
    try {
      const st = join(dir, 'model.safetensors');
      const hub = await weightCachePlan(true, dir, [st], 'q8', 'stored', true);
      expect(hub.path.startsWith(join(other, 'qwenvl', 'weights'))).toBe(true);
      const local = await weightCachePlan(true, dir, [st], 'q8', 'stored', false);
      expect(local.path.startsWith(dir)).toBe(true);
      expect(local.key).toBe(hub.key);
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });

  it('refuses bad values with E_INPUT', async () => {
    for (const v of [1, '', null, {}]) {
      const e = await loadModel(dir, { weights: 'q8', weightCache: v } as unknown as LoadOptions).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(QwenVLError);
      expect((e as QwenVLError).code).toBe('E_INPUT');
      expect((e as QwenVLError).message).toContain('options.weightCache');
    }
  });
});
