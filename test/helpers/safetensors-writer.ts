/**
 * A small safetensors writer for tests: real files in the official layout (8-byte LE header
 * length, JSON header padded with spaces to a multiple of 8, tensors sorted by alignment then
 * name so every tensor starts aligned), sharded checkpoints with their index, and the raw
 * pieces needed to build malformed files on purpose.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

/** Safetensors dtype spellings this writer knows the size of. */
export const ST_DTYPE_SIZES: Record<string, number> = {
  F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, U8: 1, I8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
};

/** One tensor to write: its bytes come from any typed array (or raw bytes). */
export interface WriterTensor {
  dtype: string;
  shape: number[];
  data: ArrayBufferView;
}

export type WriterTensors = Record<string, WriterTensor>;

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** The length field and the header text (padded with spaces to a multiple of 8 unless `pad` is false). */
function headerPieces(headerText: string, opts: { headerLength?: bigint; pad?: boolean }): Buffer[] {
  let header = Buffer.from(headerText, 'utf8');
  if (opts.pad ?? true) {
    const padded = Math.ceil(header.length / 8) * 8;
    if (padded !== header.length) header = Buffer.concat([header, Buffer.alloc(padded - header.length, 0x20)]);
  }
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.headerLength ?? BigInt(header.length));
  return [len, header];
}

/**
 * Joins a header text and a data section into a file image. `headerLength` overrides the
 * length field (to write a lying one); `pad` pads the header with spaces to a multiple of 8.
 */
export function assembleSafetensors(
  headerText: string,
  data: Uint8Array = new Uint8Array(0),
  opts: { headerLength?: bigint; pad?: boolean } = {},
): Buffer {
  return Buffer.concat([...headerPieces(headerText, opts), data]);
}

/** The header text and the tensors' bytes in file order, in the official layout. */
function layout(tensors: WriterTensors, metadata?: Record<string, string>): { headerText: string; chunks: Uint8Array[] } {
  const names = Object.keys(tensors).sort((a, b) => {
    const sa = ST_DTYPE_SIZES[tensors[a].dtype] ?? 1;
    const sb = ST_DTYPE_SIZES[tensors[b].dtype] ?? 1;
    return sb - sa || (a < b ? -1 : a > b ? 1 : 0);
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const b = bytesOf(t.data);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + b.length] };
    chunks.push(b);
    offset += b.length;
  }
  return { headerText: JSON.stringify(header), chunks };
}

/** Encodes tensors as a safetensors file image, in the official layout. */
export function encodeSafetensors(tensors: WriterTensors, metadata?: Record<string, string>): Buffer {
  const { headerText, chunks } = layout(tensors, metadata);
  return assembleSafetensors(headerText, Buffer.concat(chunks));
}

/** Writes one safetensors file (creating its folder), piece by piece: no copy of the tensors' bytes. */
export async function writeSafetensors(file: string, tensors: WriterTensors, metadata?: Record<string, string>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const { headerText, chunks } = layout(tensors, metadata);
  await writeFile(file, [...headerPieces(headerText, {}), ...chunks]);
}

/**
 * Writes a sharded checkpoint: one file per entry of `shards` and `model.safetensors.index.json`.
 * `weightMap` overrides the index's map (default: every tensor to the shard holding it).
 */
export async function writeShardedCheckpoint(
  dir: string,
  shards: Record<string, WriterTensors>,
  opts: { weightMap?: Record<string, string>; metadata?: Record<string, unknown> } = {},
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [file, tensors] of Object.entries(shards)) {
    await writeSafetensors(path.join(dir, file), tensors, { format: 'pt' });
    for (const [name, t] of Object.entries(tensors)) {
      weightMap[name] = file;
      total += t.data.byteLength;
    }
  }
  const index = { metadata: opts.metadata ?? { total_size: total }, weight_map: opts.weightMap ?? weightMap };
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  await writeFile(indexFile, JSON.stringify(index, null, 2));
  return indexFile;
}

/** float32 -> bfloat16 bits, round to nearest even (what torch's .to(bfloat16) does). */
export function f32ToBf16Bits(x: Float32Array | number[]): Uint16Array {
  const f = Float32Array.from(x);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const v = u[i];
    if ((v & 0x7fffffff) > 0x7f800000) out[i] = (v >>> 16) | 0x40;
    else out[i] = ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** float32 -> IEEE half bits, round to nearest even, overflow to infinity. */
export function f32ToF16Bits(x: Float32Array | number[]): Uint16Array {
  const f = Float32Array.from(x);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const v = u[i];
    const sign = (v >>> 16) & 0x8000;
    const abs = v & 0x7fffffff;
    let h: number;
    if (abs > 0x7f800000) h = 0x7e00;
    else if (abs >= 0x477ff000) h = 0x7c00;
    else if (abs < 0x38800000) {
      // subnormal: value / 2^-24, rounded half to even
      const val = f[i] < 0 ? -f[i] : f[i];
      const q = val / 2 ** -24;
      let r = Math.floor(q);
      const rem = q - r;
      if (rem > 0.5 || (rem === 0.5 && (r & 1) === 1)) r++;
      h = r;
    } else {
      h = (abs >>> 13) - ((127 - 15) << 10);
      const rem = abs & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
    }
    out[i] = sign | h;
  }
  return out;
}

/** Deterministic pseudo-random floats in [-1, 1) (mulberry32), for tensor contents. */
export function randomFloats(n: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
