/**
 * The tensor type handed across the native boundary: dtype, shape and a typed array that is
 * usually a zero-copy view of native memory (a mapped checkpoint, an output buffer).
 * @module
 */
import { QwenVLError, inputError } from './errors.js';
import { native, type NativeTensorData } from './native/binding.js';
import { publicCallAsync } from './validate.js';

/**
 * Element types. `f16` and `bf16` are stored as raw 16-bit patterns in a `Uint16Array`; `f8_e4m3`
 * (float8_e4m3fn, the element of FP8 checkpoints) as raw bytes in a `Uint8Array`.
 */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'i64' | 'u8' | 'f8_e4m3';

/** The typed array class that holds each dtype. */
export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

/** The integer codes the native side uses (native/core/dtype.h `DType`). @internal */
export const DTYPE_CODES: Readonly<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2, i32: 3, i64: 4, u8: 5, f8_e4m3: 6 };
const DTYPE_BY_CODE: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'i64', 'u8', 'f8_e4m3'];

/** Bytes per element of each dtype. */
export const DTYPE_SIZES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, i64: 8, u8: 1, f8_e4m3: 1 };

const ARRAY_CTORS = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  i32: Int32Array,
  i64: BigInt64Array,
  u8: Uint8Array,
  f8_e4m3: Uint8Array,
} as const;

/** Whether `s` names a dtype. */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZES, s);
}

/** Element count of a shape (1 for a scalar `[]`); throws E_INPUT on a bad dimension. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw inputError(`shape [${shape.join(', ')}] has an invalid dimension ${d}`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw inputError(`shape [${shape.join(', ')}] has too many elements`);
  return n;
}

/**
 * A dense, row-major tensor.
 *
 * `data` may share memory with native code (`external: true`): a view of a memory-mapped
 * checkpoint or of a native output buffer, kept alive for as long as this array is reachable.
 * Writing into a view of a mapped checkpoint changes only this process's copy-on-write pages,
 * never the file. Where external buffers are not allowed (Electron's memory cage, builds with
 * `QWENVL_NO_EXTERNAL_BUFFERS`, or `QWENVL_COPY_TENSORS=1` in the environment) the same API
 * hands out copies and `external` is false.
 */
export class Tensor {
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions, outermost first. `[]` is a scalar. */
  readonly shape: readonly number[];
  /** The elements, row-major. f16/bf16 are raw bit patterns; use {@link Tensor.toFloat32} for values. */
  readonly data: TensorData;
  /** True when `data` is a zero-copy view of native memory, false when it is a JS-owned copy. */
  readonly external: boolean;

  /**
   * Wraps `data` (no copy). Its class must match the dtype (Float32Array for f32, Uint16Array
   * for f16/bf16, Int32Array, BigInt64Array, Uint8Array) and its length the shape's size.
   */
  constructor(dtype: DType, shape: readonly number[], data: TensorData, external = false) {
    if (!isDType(dtype)) throw inputError(`unknown dtype ${String(dtype)}`);
    const Ctor = ARRAY_CTORS[dtype];
    if (!(data instanceof Ctor)) {
      throw inputError(`tensor data for dtype ${dtype} must be a ${Ctor.name}, got ${describe(data)}`);
    }
    const n = shapeSize(shape);
    if (data.length !== n) {
      throw inputError(`tensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
    }
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
    this.external = external;
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Size of the data in bytes. */
  get byteLength(): number {
    return this.data.byteLength;
  }

  /**
   * The values as float32: f16/bf16 are decoded, integers converted (i64 beyond 2^24 loses
   * precision). For an f32 tensor this returns `data` itself, not a copy.
   */
  toFloat32(): Float32Array {
    switch (this.dtype) {
      case 'f32':
        return this.data as Float32Array;
      case 'bf16':
        return bf16ToFloat32(this.data as Uint16Array);
      case 'f16':
        return f16ToFloat32(this.data as Uint16Array);
      case 'f8_e4m3':
        return f8e4m3ToFloat32(this.data as Uint8Array);
      case 'i64': {
        const src = this.data as BigInt64Array;
        const out = new Float32Array(src.length);
        for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
        return out;
      }
      default:
        return Float32Array.from(this.data as Int32Array | Uint8Array);
    }
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

/** Decodes float8_e4m3fn bytes (bias 7, no infinity, S.1111.111 is NaN) exactly. */
export function f8e4m3ToFloat32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    const exp = (b >> 3) & 15;
    const mant = b & 7;
    const mag = exp === 15 && mant === 7 ? NaN : exp === 0 ? mant * 2 ** -9 : (1 + mant / 8) * 2 ** (exp - 7);
    out[i] = b & 0x80 ? -mag : mag;
  }
  return out;
}

/** Decodes bfloat16 bit patterns: a bf16 is the top half of a float32. */
export function bf16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return out;
}

const F16_SUBNORMAL_UNIT = 2 ** -24;

/** Decodes IEEE half-precision bit patterns (subnormals, infinities and NaN included). */
export function f16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      // zero or subnormal: mant * 2^-24, exact in float32
      const v = mant * F16_SUBNORMAL_UNIT;
      out[i] = sign ? -v : v;
    } else if (exp === 31) {
      u[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      u[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return out;
}

/** Wraps a native result in a {@link Tensor}. @internal */
export function tensorFromNative(t: NativeTensorData): Tensor {
  const dtype = DTYPE_BY_CODE[t.dtype];
  if (dtype === undefined) throw new QwenVLError('E_NATIVE', `native returned unknown dtype code ${t.dtype}`);
  const Ctor = ARRAY_CTORS[dtype];
  return new Tensor(dtype, t.shape, new Ctor(t.data), t.external);
}

/**
 * Converts a tensor to another dtype on a native worker thread (the JS thread never waits).
 * Any dtype converts to f32/f16/bf16 (round to nearest even); integers convert to integers
 * when every value fits (else E_INPUT); float to integer is E_UNSUPPORTED. The input's memory
 * is read in place: do not transfer or detach its buffer until the promise settles.
 */
export function castTensor(t: Tensor, to: DType): Promise<Tensor> {
  return publicCallAsync('castTensor', arguments, async () => {
    if (!(t instanceof Tensor)) throw inputError('castTensor expects a Tensor');
    if (!isDType(to)) throw inputError(`castTensor: unknown dtype ${String(to)}`);
    const r = await native.castTensor(t.data, DTYPE_CODES[t.dtype], [...t.shape], DTYPE_CODES[to]);
    return tensorFromNative(r);
  });
}
