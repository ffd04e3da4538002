import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QwenVLError, Tensor, castTensor, info, openSafetensors } from '../lib/index.js';
import { native } from '../lib/native/binding.js';
import { f32ToBf16Bits, f32ToF16Bits, randomFloats, writeSafetensors } from './helpers/safetensors-writer.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// False in builds with QWENVL_NO_EXTERNAL_BUFFERS (Electron): every tensor is then a copy.
const zeroCopy = info().externalBuffers;
let dir: string;
let ckptFile: string;
const weights = randomFloats(1000, 7);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'qwenvl-tensor-'));
  ckptFile = path.join(dir, 'model.safetensors');
  await writeSafetensors(ckptFile, {
    w: { dtype: 'F32', shape: [10, 100], data: weights },
    h: { dtype: 'BF16', shape: [1000], data: f32ToBf16Bits(weights) },
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<QwenVLError> {
  const promise = typeof p === 'function' ? Promise.resolve().then(p) : p;
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected an error').toBeInstanceOf(QwenVLError);
  return err as QwenVLError;
}

/** Runs a TS snippet in a fresh node process (through tsx) and returns what it printed as JSON. */
async function runChild(body: string, env: Record<string, string> = {}, flags: string[] = []): Promise<any> {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.mts`);
  const lib = pathToFileURL(path.join(root, 'lib/index.ts')).href;
  await writeFile(script, `import * as q from ${JSON.stringify(lib)};\n${body}\n`);
  const { stdout } = await promisify(execFile)(process.execPath, [...flags, '--import', 'tsx', script], {
    cwd: root,
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('Tensor', () => {
  it('checks its data against dtype and shape', async () => {
    const t = new Tensor('f32', [2, 3], new Float32Array(6));
    expect(t.size).toBe(6);
    expect(t.rank).toBe(2);
    expect(t.byteLength).toBe(24);
    expect(t.external).toBe(false);
    expect(Object.isFrozen(t.shape)).toBe(true);
    expect((await rejection(() => new Tensor('f32', [2, 3], new Float64Array(6) as never))).code).toBe('E_INPUT');
    expect((await rejection(() => new Tensor('bf16', [2], new Float32Array(2)))).message).toMatch(/Uint16Array/);
    expect((await rejection(() => new Tensor('f32', [2, 2], new Float32Array(6)))).message).toMatch(/6 elements but shape \[2, 2\] needs 4/);
    expect((await rejection(() => new Tensor('f32', [-1], new Float32Array(0)))).code).toBe('E_INPUT');
    expect((await rejection(() => new Tensor('f64' as never, [1], new Float32Array(1)))).code).toBe('E_INPUT');
  });

  it('toFloat32 decodes f16, bf16 and integers', () => {
    const bf = new Tensor('bf16', [4], Uint16Array.from([0x3f80, 0xc000, 0x7f80, 0x0001]));
    expect([...bf.toFloat32()]).toEqual([1, -2, Infinity, 2 ** -133]);
    const h = new Tensor('f16', [7], Uint16Array.from([0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x8000, 0x7bff]));
    const hv = h.toFloat32();
    expect([...hv]).toEqual([1, -2, Infinity, -Infinity, 2 ** -24, -0, 65504]);
    expect(Object.is(hv[5], -0)).toBe(true);
    expect(Number.isNaN(new Tensor('f16', [1], Uint16Array.from([0x7e00])).toFloat32()[0])).toBe(true);
    expect([...new Tensor('i64', [2], BigInt64Array.from([-3n, 5n])).toFloat32()]).toEqual([-3, 5]);
    expect([...new Tensor('u8', [2], Uint8Array.from([0, 255])).toFloat32()]).toEqual([0, 255]);
    // f16 round trip over every finite bit pattern
    const all = new Uint16Array(65536).map((_, i) => i);
    const vals = new Tensor('f16', [65536], all).toFloat32();
    const back = f32ToF16Bits(vals);
    for (let i = 0; i < 65536; i++) {
      const nan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (!nan && back[i] !== i) throw new Error(`f16 ${i.toString(16)} -> ${vals[i]} -> ${back[i].toString(16)}`);
    }
  });
});

describe('zero-copy tensors from native memory', () => {
  it('views a mapped checkpoint without copying, and survives GC of views', async () => {
    const ckpt = await openSafetensors(ckptFile);
    const w = ckpt.get('w');
    expect(w.external).toBe(zeroCopy);
    expect([...w.data.subarray(0, 5)]).toEqual([...weights.subarray(0, 5)]);
    // Two views of the same bytes see each other's (copy-on-write) writes: they share memory.
    const w2 = ckpt.get('w');
    (w.data as Float32Array)[3] = 42;
    expect(w2.data[3]).toBe(zeroCopy ? 42 : weights[3]);
    ckpt.dispose();
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) gc();
    expect(w2.data[0]).toBe(weights[0]);
  });

  it('finalizers run after GC without crashing (child process with --expose-gc)', async () => {
    const out = await runChild(
      `
      const ckpt = await q.openSafetensors(${JSON.stringify(ckptFile)});
      let keep = ckpt.get('h');
      for (let i = 0; i < 2000; i++) ckpt.get(i % 2 ? 'w' : 'h');
      for (let i = 0; i < 50; i++) await q.castTensor(keep, 'f32');
      ckpt.dispose();
      globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); globalThis.gc();
      const first = keep.toFloat32()[0];
      keep = null;
      globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); globalThis.gc();
      console.log(JSON.stringify({ ok: true, first }));
      `,
      {},
      ['--expose-gc'],
    );
    expect(out.ok).toBe(true);
    expect(out.first).toBe(new Tensor('bf16', [1], f32ToBf16Bits([weights[0]])).toFloat32()[0]);
  });

  it('QWENVL_COPY_TENSORS=1 copies instead, with identical values', async () => {
    const out = await runChild(
      `
      const ckpt = await q.openSafetensors(${JSON.stringify(ckptFile)});
      const w = ckpt.get('w');
      const c = await q.castTensor(ckpt.get('h'), 'f32');
      ckpt.dispose();
      console.log(JSON.stringify({ external: w.external, castExternal: c.external, w: Array.from(w.data), c: Array.from(c.data) }));
      `,
      { QWENVL_COPY_TENSORS: '1' },
    );
    expect(out.external).toBe(false);
    expect(out.castExternal).toBe(false);
    expect(out.w).toEqual(Array.from(weights));
    const ckpt = await openSafetensors(ckptFile);
    expect(out.c).toEqual(Array.from(ckpt.get('h').toFloat32()));
    ckpt.dispose();
  });
});

describe('castTensor', () => {
  it('bf16 and f16 to f32 match the JS decoders; output is external', async () => {
    const bits = f32ToBf16Bits(randomFloats(1001, 3));
    const bf = new Tensor('bf16', [7, 11, 13], bits);
    const out = await castTensor(bf, 'f32');
    expect(out.dtype).toBe('f32');
    expect([...out.shape]).toEqual([7, 11, 13]);
    expect(out.external).toBe(zeroCopy);
    expect([...out.data]).toEqual(Array.from(bf.toFloat32()));
    const all = new Uint16Array(65536).map((_, i) => i);
    const h = await castTensor(new Tensor('f16', [65536], all), 'f32');
    const ref = new Tensor('f16', [65536], all).toFloat32();
    for (let i = 0; i < 65536; i++) {
      const a = h.data[i] as number;
      if (!(Object.is(a, ref[i]) || (Number.isNaN(a) && Number.isNaN(ref[i])))) throw new Error(`f16 ${i}: ${a} vs ${ref[i]}`);
    }
  });

  it('f32 to bf16/f16 rounds to nearest even like the reference writer', async () => {
    const x = randomFloats(513, 9).map((v, i) => v * 2 ** ((i % 40) - 20));
    x[0] = 65520; // f16 overflow boundary
    x[1] = 2 ** -25; // f16 half of the smallest subnormal: ties to even (0)
    x[2] = 3 * 2 ** -25;
    const t = new Tensor('f32', [513], x);
    expect([...(await castTensor(t, 'bf16')).data]).toEqual(Array.from(f32ToBf16Bits(x)));
    expect([...(await castTensor(t, 'f16')).data]).toEqual(Array.from(f32ToF16Bits(x)));
  });

  it('integer casts, same-dtype copy, subarray inputs', async () => {
    const i32 = new Tensor('i32', [3], Int32Array.from([-1, 0, 2147483647]));
    expect([...(await castTensor(i32, 'i64')).data]).toEqual([-1n, 0n, 2147483647n]);
    expect([...(await castTensor(i32, 'f32')).data]).toEqual([-1, 0, 2147483648]);
    const u8 = new Tensor('u8', [2], Uint8Array.from([3, 250]));
    expect([...(await castTensor(u8, 'i32')).data]).toEqual([3, 250]);
    const big = new Tensor('i64', [2], BigInt64Array.from([1n, 1n << 40n]));
    expect((await rejection(castTensor(big, 'i32'))).message).toMatch(/element 1 .* does not fit in i32/);
    expect((await rejection(castTensor(new Tensor('f32', [1], new Float32Array(1)), 'i32'))).code).toBe('E_UNSUPPORTED');
    const base = Float32Array.from([9, 1, 2, 3, 9]);
    const sub = new Tensor('f32', [3], base.subarray(1, 4));
    const copy = await castTensor(sub, 'f32');
    expect([...copy.data]).toEqual([1, 2, 3]);
    expect(copy.data.buffer).not.toBe(base.buffer);
    const empty = await castTensor(new Tensor('bf16', [0, 3], new Uint16Array(0)), 'f32');
    expect([...empty.shape]).toEqual([0, 3]);
  });

  it('native castTensor refuses mismatched inputs with E_INPUT', async () => {
    const bad = async (fn: () => Promise<unknown>, re: RegExp) => {
      const e = await rejection(fn);
      expect(e.code).toBe('E_INPUT');
      expect(e.message).toMatch(re);
    };
    await bad(() => native.castTensor(new Float64Array(4), 0, [4], 0), /Float64Array but dtype f32 needs a Float32Array/);
    await bad(() => native.castTensor(new Float32Array(4), 2, [4], 0), /Float32Array but dtype bf16 needs a Uint16Array/);
    await bad(() => native.castTensor(new Float32Array(4), 0, [5], 0), /4 elements but shape \[5\] needs 5/);
    await bad(() => native.castTensor(new Float32Array(4), 0, [2, -2], 0), /non-negative integer/);
    await bad(() => native.castTensor(new Float32Array(4), 17, [4], 0), /unknown dtype code/);
    await bad(() => native.castTensor(new Float32Array(4), 0, [4], 'f128' as never), /unknown dtype "f128"/);
    await bad(() => native.castTensor([1, 2, 3, 4] as never, 0, [4], 0), /must be a typed array/);
    await bad(() => native.castTensor(new Float32Array(4), 0, 4 as never, 0), /array of dimensions/);
  });
});
