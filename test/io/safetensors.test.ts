import { mkdtemp, open, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QwenVLError, info, openSafetensors, readSafetensorsHeader } from '../../lib/index.js';
import { native } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';
import {
  assembleSafetensors,
  encodeSafetensors,
  f32ToBf16Bits,
  f32ToF16Bits,
  randomFloats,
  writeSafetensors,
  writeShardedCheckpoint,
} from '../helpers/safetensors-writer.js';

// False in builds with QWENVL_NO_EXTERNAL_BUFFERS (Electron): every tensor is then a copy.
const zeroCopy = info().externalBuffers;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'qwenvl-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
async function writeRaw(image: Buffer | Uint8Array): Promise<string> {
  const file = path.join(dir, `raw-${counter++}.safetensors`);
  await writeFile(file, image);
  return file;
}

/** A file with the given header object (serialised as-is) and `dataBytes` zero bytes of data. */
async function writeHeader(header: unknown, dataBytes = 0): Promise<string> {
  return writeRaw(assembleSafetensors(JSON.stringify(header), new Uint8Array(dataBytes)));
}

async function expectError(p: Promise<unknown>, code: string, ...parts: (string | RegExp)[]): Promise<QwenVLError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(QwenVLError);
  const q = err as QwenVLError;
  expect(q.code).toBe(code);
  for (const part of parts) expect(q.message).toMatch(part);
  return q;
}

const formatError = (p: Promise<unknown>, ...parts: (string | RegExp)[]) => expectError(p, 'E_MODEL_FORMAT', ...parts);

describe('safetensors: valid files', () => {
  it('opens a single file and views every dtype zero-copy', async () => {
    const f32 = randomFloats(6, 1);
    const bf16 = f32ToBf16Bits(randomFloats(4, 2));
    const f16 = f32ToF16Bits([1, -2, 0.5, 65504]);
    const i32 = Int32Array.from([7]);
    const i64 = BigInt64Array.from([-5n, 1n << 40n]);
    const u8 = Uint8Array.from([1, 2, 3]);
    const file = path.join(dir, 'valid.safetensors');
    await writeSafetensors(
      file,
      {
        'a.f32': { dtype: 'F32', shape: [2, 3], data: f32 },
        'b.bf16': { dtype: 'BF16', shape: [4], data: bf16 },
        'c.f16': { dtype: 'F16', shape: [2, 2], data: f16 },
        'd.i32': { dtype: 'I32', shape: [], data: i32 },
        'e.i64': { dtype: 'I64', shape: [2], data: i64 },
        'f.u8': { dtype: 'U8', shape: [3], data: u8 },
        'g.empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
        // float8_e4m3fn: 1, -2, 448 (largest), 2^-9 (smallest subnormal), -0, NaN.
        'h.f8': { dtype: 'F8_E4M3', shape: [6], data: Uint8Array.from([0x38, 0xc0, 0x7e, 0x01, 0x80, 0x7f]) },
      },
      { format: 'pt' },
    );
    const ckpt = await openSafetensors(file);
    expect(ckpt.tensors.size).toBe(8);
    expect(ckpt.headers[0].metadata).toEqual({ format: 'pt' });
    const info = ckpt.tensors.get('a.f32')!;
    expect(info).toMatchObject({ dtype: 'f32', shape: [2, 3], file, byteLength: 24 });
    expect(info.byteOffset).toBe(ckpt.headers[0].dataOffset + 16); // after the i64 tensor (sorted by alignment)

    const a = ckpt.get('a.f32');
    expect(a.external).toBe(zeroCopy);
    expect(a.dtype).toBe('f32');
    expect([...a.shape]).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect([...a.data]).toEqual([...f32]);
    expect(a.toFloat32()).toBe(a.data);
    const b = ckpt.get('b.bf16');
    expect(b.data).toBeInstanceOf(Uint16Array);
    expect([...b.data]).toEqual([...bf16]);
    expect([...ckpt.get('c.f16').toFloat32()]).toEqual([1, -2, 0.5, 65504]);
    const d = ckpt.get('d.i32');
    expect(d.size).toBe(1);
    expect(d.shape).toEqual([]);
    expect([...d.data]).toEqual([7]);
    expect([...ckpt.get('e.i64').data]).toEqual([-5n, 1n << 40n]);
    expect([...ckpt.get('f.u8').data]).toEqual([1, 2, 3]);
    const g = ckpt.get('g.empty');
    expect(g.size).toBe(0);
    expect([...g.shape]).toEqual([0, 4]);
    const h = ckpt.get('h.f8');
    expect(h.dtype).toBe('f8_e4m3');
    expect(h.data).toBeInstanceOf(Uint8Array);
    expect([...h.toFloat32()]).toEqual([1, -2, 448, 2 ** -9, -0, NaN]);

    // Writing into a view changes this process's copy-on-write page, never the file.
    (a.data as Float32Array)[0] = 1234;
    const again = await openSafetensors(file);
    expect(again.get('a.f32').data[0]).toBe(f32[0]);
    again.dispose();

    await expectError(Promise.resolve().then(() => ckpt.get('nope')), 'E_INPUT', /no tensor named "nope"/);
    ckpt.dispose();
    ckpt.dispose();
    // Views made before dispose stay valid; new ones are refused.
    expect([...b.data]).toEqual([...bf16]);
    await expectError(Promise.resolve().then(() => ckpt.get('a.f32')), 'E_DISPOSED');
  });

  it('opens a folder with model.safetensors, and a header with gaps and out-of-order ranges', async () => {
    const sub = path.join(dir, 'folder');
    await writeSafetensors(path.join(sub, 'model.safetensors'), { w: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } });
    const ckpt = await openSafetensors(sub);
    expect([...ckpt.get('w').data]).toEqual([1, 2]);
    ckpt.dispose();

    // y listed first but stored second, with a 4-byte gap before it: allowed (no overlap).
    const data = new Float32Array([10, 20, 0, 30]);
    const gap = await writeRaw(
      assembleSafetensors(
        JSON.stringify({
          y: { dtype: 'F32', shape: [1], data_offsets: [12, 16] },
          x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        }),
        new Uint8Array(data.buffer),
      ),
    );
    const c2 = await openSafetensors(gap);
    expect([...c2.get('x').data]).toEqual([10, 20]);
    expect([...c2.get('y').data]).toEqual([30]);
    c2.dispose();
  });

  it('copies a misaligned tensor instead of viewing it', async () => {
    const vals = Float32Array.from([1.5, -2.25]);
    const data = new Uint8Array(3 + 8);
    data.set([9, 8, 7]);
    data.set(new Uint8Array(vals.buffer), 3);
    const file = await writeRaw(
      assembleSafetensors(
        JSON.stringify({
          u: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
          f: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
        }),
        data,
      ),
    );
    const ckpt = await openSafetensors(file);
    const f = ckpt.get('f');
    expect(f.external).toBe(false);
    expect([...f.data]).toEqual([1.5, -2.25]);
    expect(ckpt.get('u').external).toBe(zeroCopy);
    ckpt.dispose();
  });

  it('opens a sharded checkpoint through its index', async () => {
    const sdir = path.join(dir, 'sharded');
    const w1 = randomFloats(8, 3);
    const w2 = f32ToBf16Bits(randomFloats(6, 4));
    await writeShardedCheckpoint(sdir, {
      'model-00001-of-00002.safetensors': { 'layer.0.w': { dtype: 'F32', shape: [2, 4], data: w1 } },
      'model-00002-of-00002.safetensors': {
        'layer.1.w': { dtype: 'BF16', shape: [3, 2], data: w2 },
        'layer.1.b': { dtype: 'BF16', shape: [1], data: f32ToBf16Bits([0.25]) },
      },
    });
    const ckpt = await openSafetensors(sdir);
    expect(ckpt.path).toBe(path.join(sdir, 'model.safetensors.index.json'));
    expect(ckpt.headers.length).toBe(2);
    expect(ckpt.indexMetadata).toHaveProperty('total_size');
    expect(ckpt.tensors.get('layer.1.w')!.file).toBe(path.join(sdir, 'model-00002-of-00002.safetensors'));
    expect([...ckpt.get('layer.0.w').data]).toEqual([...w1]);
    expect([...ckpt.get('layer.1.w').data]).toEqual([...w2]);
    expect(ckpt.get('layer.1.b').toFloat32()[0]).toBe(0.25);
    ckpt.dispose();

    // A tensor a shard holds but the map does not list is kept.
    const udir = path.join(dir, 'sharded-unlisted');
    await writeShardedCheckpoint(
      udir,
      { 's1.safetensors': { a: { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) }, extra: { dtype: 'U8', shape: [1], data: Uint8Array.from([2]) } } },
      { weightMap: { a: 's1.safetensors' } },
    );
    const u = await openSafetensors(path.join(udir, 'model.safetensors.index.json'));
    expect([...u.get('extra').data]).toEqual([2]);
    u.dispose();
  });

  it('reads the Qwen2-VL fixture checkpoint and decodes bf16 like the raw bytes say', async () => {
    const file = path.join(checkpointDir('qwen2-vl'), 'model.safetensors');
    if (!existsSync(file)) return;
    const ckpt = await openSafetensors(file);
    expect(ckpt.tensors.size).toBe(57);
    const name = 'model.layers.0.input_layernorm.weight';
    const info = ckpt.tensors.get(name)!;
    expect(info.dtype).toBe('bf16');
    const t = ckpt.get(name);
    expect(t.external).toBe(zeroCopy);
    const vals = t.toFloat32();
    // Straightforward decoding of the file bytes: a bf16 is the high half of a float32.
    const fh = await open(file, 'r');
    const raw = Buffer.alloc(info.byteLength);
    await fh.read(raw, 0, raw.length, info.byteOffset);
    await fh.close();
    const expected = new Float32Array(info.byteLength / 2);
    const dv = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < expected.length; i++) {
      dv.setUint32(0, raw.readUInt16LE(2 * i) << 16, true);
      expected[i] = dv.getFloat32(0, true);
    }
    expect(Array.from(vals)).toEqual(Array.from(expected));
    const embed = ckpt.get('model.embed_tokens.weight');
    expect([...embed.shape]).toEqual([151936, 32]);
    ckpt.dispose();
  });
});

describe('safetensors: malformed files', () => {
  it('file shorter than 8 bytes', async () => {
    const f = await writeRaw(new Uint8Array([1, 2, 3]));
    await formatError(openSafetensors(f), f, /3 bytes, too short/);
  });

  it('header cut short (length runs past the end)', async () => {
    const full = assembleSafetensors(JSON.stringify({ x: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }));
    const f = await writeRaw(full.subarray(0, 20));
    await formatError(openSafetensors(f), f, /runs past the end of the file/);
    const g = await writeRaw(assembleSafetensors('{}', undefined, { headerLength: 1n << 40n }));
    await formatError(openSafetensors(g), /exceeds the 100000000-byte limit/);
    const h = await writeRaw(assembleSafetensors('{}', undefined, { headerLength: 0xffffffffffffffffn }));
    await formatError(openSafetensors(h), /exceeds/);
  });

  it('header not UTF-8 / not JSON', async () => {
    const f = await writeRaw(assembleSafetensors('{"a": nope}'));
    await formatError(openSafetensors(f), f, /header is not JSON/);
    const bad = Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20, 0x20])]);
    await formatError(openSafetensors(await writeRaw(bad)), /not valid UTF-8/);
    await formatError(openSafetensors(await writeRaw(assembleSafetensors(''))), /not JSON/);
  });

  it('header JSON but not an object', async () => {
    await formatError(openSafetensors(await writeRaw(assembleSafetensors('[1, 2]'))), /not an object \(it is an array\)/);
    await formatError(openSafetensors(await writeRaw(assembleSafetensors('42'))), /not an object \(it is a number\)/);
    await formatError(openSafetensors(await writeRaw(assembleSafetensors('null'))), /not an object \(it is null\)/);
  });

  it('bad entries and metadata', async () => {
    await formatError(openSafetensors(await writeHeader({ t: 5 })), /tensor "t": entry must be an object/);
    await formatError(openSafetensors(await writeHeader({ __metadata__: { a: 1 } })), /__metadata__ entry "a" must be a string/);
    await formatError(openSafetensors(await writeHeader({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } })), /tensor "t": shape/);
    await formatError(openSafetensors(await writeHeader({ t: { dtype: 'F32', shape: [1.5], data_offsets: [0, 0] } })), /tensor "t": shape/);
    await formatError(openSafetensors(await writeHeader({ t: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4)), /tensor "t": data_offsets/);
    await formatError(openSafetensors(await writeHeader({ t: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, 4)), /tensor "t": data_offsets/);
  });

  it('unknown and unsupported dtypes', async () => {
    const f = await writeHeader({ t: { dtype: 'Q4_X', shape: [1], data_offsets: [0, 1] } }, 1);
    await formatError(openSafetensors(f), f, /tensor "t": unknown dtype "Q4_X"/);
    await formatError(openSafetensors(await writeHeader({ t: { dtype: 'toString', shape: [1], data_offsets: [0, 1] } }, 1)), /unknown dtype/);
    for (const dt of ['F8_E5M2', 'I8', 'BOOL', 'F64']) {
      const g = await writeHeader({ t: { dtype: dt, shape: [1], data_offsets: [0, 8] } }, 8);
      await expectError(openSafetensors(g), 'E_UNSUPPORTED', g, `tensor "t": unsupported dtype ${dt}`);
    }
  });

  it('offsets out of range', async () => {
    const f = await writeHeader({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 12);
    await formatError(openSafetensors(f), f, /tensor "t": data_offsets \[0, 16\] run past the end of the data section \(12 bytes\)/);
  });

  it('overlapping ranges', async () => {
    const f = await writeHeader(
      {
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
      },
      16,
    );
    await formatError(openSafetensors(f), f, /tensor "b": data_offsets \[8, 16\] overlap those of tensor "a" \[0, 16\]/);
    // Overlap with a tensor that is not the immediate predecessor in offset order.
    const g = await writeHeader(
      {
        big: { dtype: 'U8', shape: [10], data_offsets: [0, 10] },
        s1: { dtype: 'U8', shape: [2], data_offsets: [2, 4] },
        s2: { dtype: 'U8', shape: [2], data_offsets: [5, 7] },
      },
      10,
    );
    await formatError(openSafetensors(g), /overlap those of tensor "big"/);
  });

  it('unordered ranges (begin > end)', async () => {
    const f = await writeHeader({ t: { dtype: 'U8', shape: [0], data_offsets: [8, 4] } }, 8);
    await formatError(openSafetensors(f), f, /tensor "t": data_offsets \[8, 4\] are reversed/);
  });

  it('shape × dtype size ≠ byte length', async () => {
    const f = await writeHeader({ t: { dtype: 'BF16', shape: [3, 2], data_offsets: [0, 8] } }, 8);
    await formatError(openSafetensors(f), f, /tensor "t": shape \[3, 2\] of BF16 needs 12 bytes but data_offsets \[0, 8\] hold 8/);
    // Huge shapes do not wrap around.
    const g = await writeHeader({ t: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 0] } }, 0);
    await formatError(openSafetensors(g), /needs \d+ bytes/);
  });

  it('duplicate tensor names', async () => {
    const text =
      '{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, ' +
      '"\\u0077": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}';
    const f = await writeRaw(assembleSafetensors(text, new Uint8Array(2)));
    await formatError(openSafetensors(f), f, /duplicate tensor name "w"/);
    const nested = '{"w": {"dtype": "U8", "dtype": "F32", "shape": [1], "data_offsets": [0, 1]}}';
    await formatError(openSafetensors(await writeRaw(assembleSafetensors(nested, new Uint8Array(1)))), /duplicate key "dtype" in header entry "w"/);
  });

  it('index pointing to a missing shard', async () => {
    const sdir = path.join(dir, 'missing-shard');
    const index = await writeShardedCheckpoint(
      sdir,
      { 'a.safetensors': { x: { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) } } },
      { weightMap: { x: 'a.safetensors', y: 'b.safetensors' } },
    );
    await formatError(openSafetensors(sdir), index, /shard "b.safetensors" \(listed for tensor "y"\) does not exist/);
  });

  it('tensor absent from its shard', async () => {
    const sdir = path.join(dir, 'absent');
    const index = await writeShardedCheckpoint(
      sdir,
      {
        'a.safetensors': { x: { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) } },
        'b.safetensors': { y: { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) } },
      },
      { weightMap: { x: 'a.safetensors', y: 'a.safetensors', z: 'b.safetensors' } },
    );
    const err = await formatError(openSafetensors(index), index, /tensor "y" is mapped to shard "a.safetensors"/);
    expect(err.message).toContain(path.join(sdir, 'a.safetensors'));
  });

  it('tensor duplicated across shards; bad index files', async () => {
    const sdir = path.join(dir, 'dup-shards');
    await writeShardedCheckpoint(
      sdir,
      {
        'a.safetensors': { x: { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) } },
        'b.safetensors': { x: { dtype: 'U8', shape: [1], data: Uint8Array.from([2]) }, y: { dtype: 'U8', shape: [1], data: Uint8Array.from([3]) } },
      },
      { weightMap: { x: 'a.safetensors', y: 'b.safetensors' } },
    );
    await formatError(openSafetensors(sdir), /tensor "x" is stored in two shards/);

    const bad = path.join(dir, 'bad-index');
    await mkdir(bad, { recursive: true });
    const idx = path.join(bad, 'model.safetensors.index.json');
    await writeFile(idx, '{"weight_map": {"x": "../../etc/passwd"}}');
    await formatError(openSafetensors(bad), idx, /not a file name/);
    await writeFile(idx, '{"weight_map": {"x": "a.safetensors", "x": "b.safetensors"}}');
    await formatError(openSafetensors(bad), /duplicate key "x" in weight_map/);
    await writeFile(idx, '[]');
    await formatError(openSafetensors(bad), /must be a JSON object/);
    await writeFile(idx, '{"metadata": {}}');
    await formatError(openSafetensors(bad), /weight_map must be an object/);
  });

  it('missing paths', async () => {
    await expectError(openSafetensors(path.join(dir, 'does-not-exist')), 'E_INPUT', /no such file/);
    const empty = path.join(dir, 'empty-folder');
    await mkdir(empty, { recursive: true });
    await formatError(openSafetensors(empty), /neither model.safetensors nor/);
  });

  it('readSafetensorsHeader reads only the header', async () => {
    const image = encodeSafetensors({ t: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } });
    const f = await writeRaw(image);
    const h = await readSafetensorsHeader(f);
    expect(h.fileSize).toBe(image.length);
    expect(h.dataOffset).toBe(8 + h.headerLength);
    expect(h.headerLength % 8).toBe(0);
    expect(h.tensors.get('t')).toMatchObject({ byteOffset: h.dataOffset, byteLength: 8 });
  });
});

describe('native mapping re-checks what JS passes', () => {
  it('refuses bad offsets, lengths, shapes and handles', async () => {
    const f = await writeRaw(encodeSafetensors({ t: { dtype: 'F32', shape: [4], data: new Float32Array(4) } }));
    const { handle, size } = native.mapFile(f);
    expect(size).toBeGreaterThan(16);
    const call = (fn: () => unknown) => Promise.resolve().then(fn);
    await expectError(call(() => native.viewTensor(handle, 0, [4], size - 8, 16)), 'E_MODEL_FORMAT', /outside the file/);
    await expectError(call(() => native.viewTensor(handle, 0, [4], 2 ** 52, 16)), 'E_MODEL_FORMAT', /outside the file/);
    await expectError(call(() => native.viewTensor(handle, 0, [5], 0, 16)), 'E_INPUT', /do not take 16 bytes/);
    await expectError(call(() => native.viewTensor(handle, 0, [-1], 0, 16)), 'E_INPUT');
    await expectError(call(() => native.viewTensor(handle, 0, [4], -1, 16)), 'E_INPUT');
    await expectError(call(() => native.viewTensor(handle, 0, [4], 0.5, 16)), 'E_INPUT');
    await expectError(call(() => native.viewTensor(handle, 99, [4], 0, 16)), 'E_INPUT', /dtype/);
    await expectError(call(() => native.viewTensor({} as never, 0, [4], 0, 16)), 'E_INPUT', /handle/);
    const ok = native.viewTensor(handle, 0, [2, 2], 0, 16);
    expect(ok.data.byteLength).toBe(16);
    native.closeMappedFile(handle);
    native.closeMappedFile(handle);
    await expectError(call(() => native.viewTensor(handle, 0, [4], 0, 16)), 'E_DISPOSED');
    // The view made before close still reads the mapping.
    expect(new Uint8Array(ok.data).length).toBe(16);
    await expectError(call(() => native.mapFile(path.join(dir, 'nope'))), 'E_MODEL_FORMAT', /cannot open/);
  });
});
