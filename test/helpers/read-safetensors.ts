/**
 * A tiny pure-TS safetensors reader for tests that only need small reference tensors (int64 and
 * float32) from fixture files, without the native addon.
 */
import { readFileSync } from 'node:fs';

export interface TestTensor {
  dtype: string;
  shape: number[];
  /** Values in row-major order (int64 converted to number; they must be safe integers). */
  data: number[];
}

/** Reads named tensors (all of them when `names` is omitted) of dtype I64, I32 or F32. */
export function readSafetensors(file: string, names?: readonly string[]): Map<string, TestTensor> {
  const buf = readFileSync(file);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const dataStart = 8 + headerLen;
  const out = new Map<string, TestTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || (names && !names.includes(name))) continue;
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const data: number[] = new Array(count);
    const at = dataStart + begin;
    if (info.dtype === 'I64') {
      if (end - begin !== count * 8) throw new Error(`${file}: ${name}: size mismatch`);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(at + i * 8, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new Error(`${file}: ${name}[${i}] is not a safe integer`);
        }
        data[i] = Number(v);
      }
    } else if (info.dtype === 'I32' || info.dtype === 'F32') {
      if (end - begin !== count * 4) throw new Error(`${file}: ${name}: size mismatch`);
      for (let i = 0; i < count; i++) {
        data[i] = info.dtype === 'I32' ? view.getInt32(at + i * 4, true) : view.getFloat32(at + i * 4, true);
      }
    } else {
      continue;
    }
    out.set(name, { dtype: info.dtype, shape: [...info.shape], data });
  }
  return out;
}
