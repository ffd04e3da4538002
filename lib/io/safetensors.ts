/**
 * Safetensors checkpoints: the header is read and validated here (only the first 8 bytes and
 * the header are read, never the tensor data), then native code maps the file and hands out
 * zero-copy views of its tensors.
 *
 * Format: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data section.
 * The JSON object maps tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets
 * relative to the data section) plus an optional `__metadata__` object of strings.
 *
 * Validation rules, each failing with a {@link QwenVLError} `E_MODEL_FORMAT` that names the file
 * and the tensor:
 * - N fits in the file and is at most 100 MB; the header is UTF-8 JSON, an object, with no
 *   duplicate keys (JSON.parse would silently keep the last one, so the text is scanned);
 * - dtype is F32, F16, BF16, I32, I64, U8 or F8_E4M3 (FP8 checkpoints). Other dtypes of the
 *   safetensors format (F64, I8, BOOL, F8_E5M2, ...) are `E_UNSUPPORTED` "unsupported dtype";
 *   anything else is "unknown dtype";
 * - shape holds non-negative safe integers; data_offsets are two non-negative safe integers with
 *   begin <= end (a reversed pair is reported as "reversed") and end within the data section;
 * - shape product × dtype size equals end - begin;
 * - no two tensors' byte ranges overlap. Gaps between tensors and tensors stored in a different
 *   order than the header lists them are allowed: neither can make one tensor read another's
 *   bytes. (The reference Rust reader is stricter and also rejects gaps; files it writes have none.)
 *
 * Sharded checkpoints (`model.safetensors.index.json` with a `weight_map` of tensor -> shard
 * file): every shard named must exist next to the index, and every tensor mapped to a shard must
 * be in that shard. Tensors a shard holds but the map does not list are kept (transformers loads
 * whole shard files too), but a name present in two shards is an error.
 * @module
 */
import { open, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { QwenVLError, formatError, inputError } from '../errors.js';
import { native, type NativeMappedFile } from '../native/binding.js';
import { DTYPE_CODES, DTYPE_SIZES, type DType, Tensor, tensorFromNative } from '../tensor.js';
import { findDuplicateKey } from './json-keys.js';
import { publicCallAsync } from '../validate.js';

/** Largest header accepted, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

const SUPPORTED_DTYPES: Readonly<Record<string, DType>> = {
  F32: 'f32',
  F16: 'f16',
  BF16: 'bf16',
  I32: 'i32',
  I64: 'i64',
  U8: 'u8',
  F8_E4M3: 'f8_e4m3',
};

// Valid in the safetensors format, but not (yet) loadable here.
const KNOWN_UNSUPPORTED_DTYPES = new Set([
  'BOOL', 'I8', 'I16', 'U16', 'U32', 'U64', 'F64', 'C64',
  'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2',
]);

/** Where one tensor lives. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Absolute path of the file holding it. */
  file: string;
  /** Offset of its first byte from the start of the file (not of the data section). */
  byteOffset: number;
  byteLength: number;
}

/** A validated header of one safetensors file. */
export interface SafetensorsHeader {
  /** Absolute path. */
  file: string;
  fileSize: number;
  /** N, the header's length in bytes. */
  headerLength: number;
  /** Where the data section starts (8 + N). */
  dataOffset: number;
  /** The `__metadata__` entry, or `{}`. */
  metadata: Record<string, string>;
  /** Tensors in header order. */
  tensors: Map<string, SafetensorsTensorInfo>;
}

function tensorError(file: string, name: string, message: string): QwenVLError {
  return formatError(file, `tensor ${JSON.stringify(name)}: ${message}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function isOffset(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates a header already read from a file. `file` is used in messages; `fileSize` is the
 * size of the whole file. Exposed for tests and tools; {@link readSafetensorsHeader} reads it.
 */
export function parseSafetensorsHeader(file: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const headerLength = headerBytes.length;
  const dataOffset = 8 + headerLength;
  const dataSize = fileSize - dataOffset;
  if (dataSize < 0) throw formatError(file, `header of ${headerLength} bytes runs past the end of the file (${fileSize} bytes)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw formatError(file, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw formatError(file, `header is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw formatError(file, `header is JSON but not an object (it is ${kindOf(json)})`);
  const dup = findDuplicateKey(text);
  if (dup !== undefined) {
    if (dup.path.length === 0) throw formatError(file, `duplicate tensor name ${JSON.stringify(dup.key)} in the header`);
    throw formatError(file, `duplicate key ${JSON.stringify(dup.key)} in header entry ${JSON.stringify(dup.path[0])}`);
  }

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw formatError(file, `__metadata__ must be an object of strings, not ${kindOf(entry)}`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw formatError(file, `__metadata__ entry ${JSON.stringify(k)} must be a string, not ${kindOf(v)}`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!isPlainObject(entry)) {
      throw tensorError(file, name, `entry must be an object with dtype, shape and data_offsets, not ${kindOf(entry)}`);
    }
    const { dtype: rawDtype, shape, data_offsets: offsets } = entry;
    if (typeof rawDtype !== 'string') throw tensorError(file, name, `dtype must be a string, not ${kindOf(rawDtype)}`);
    const dtype = SUPPORTED_DTYPES[rawDtype];
    if (dtype === undefined || !Object.prototype.hasOwnProperty.call(SUPPORTED_DTYPES, rawDtype)) {
      if (KNOWN_UNSUPPORTED_DTYPES.has(rawDtype)) {
        throw new QwenVLError('E_UNSUPPORTED', `${file}: tensor ${JSON.stringify(name)}: unsupported dtype ${rawDtype}`);
      }
      throw tensorError(file, name, `unknown dtype ${JSON.stringify(rawDtype)}`);
    }
    if (!Array.isArray(shape)) throw tensorError(file, name, `shape must be an array, not ${kindOf(shape)}`);
    for (const d of shape) {
      if (!isOffset(d)) throw tensorError(file, name, `shape ${JSON.stringify(shape)} must hold non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isOffset(offsets[0]) || !isOffset(offsets[1])) {
      throw tensorError(file, name, `data_offsets ${JSON.stringify(offsets)} must be two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw tensorError(file, name, `data_offsets [${begin}, ${end}] are reversed (begin > end)`);
    if (end > dataSize) {
      throw tensorError(file, name, `data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes)`);
    }
    let bytes = BigInt(DTYPE_SIZES[dtype]);
    for (const d of shape as number[]) bytes *= BigInt(d);
    if (bytes !== BigInt(end - begin)) {
      throw tensorError(file, name, `shape [${shape.join(', ')}] of ${rawDtype} needs ${bytes} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    tensors.set(name, {
      name,
      dtype,
      shape: Object.freeze([...(shape as number[])]),
      file,
      byteOffset: dataOffset + begin,
      byteLength: end - begin,
    });
  }

  // Overlap: sort non-empty ranges by start; each must begin at or after the furthest end so far.
  const ranges = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  let furthest: SafetensorsTensorInfo | undefined;
  for (const t of ranges) {
    if (furthest !== undefined && t.byteOffset < furthest.byteOffset + furthest.byteLength) {
      const rel = (x: SafetensorsTensorInfo) => `[${x.byteOffset - dataOffset}, ${x.byteOffset - dataOffset + x.byteLength}]`;
      throw tensorError(file, t.name, `data_offsets ${rel(t)} overlap those of tensor ${JSON.stringify(furthest.name)} ${rel(furthest)}`);
    }
    if (furthest === undefined || t.byteOffset + t.byteLength > furthest.byteOffset + furthest.byteLength) furthest = t;
  }
  return { file, fileSize, headerLength, dataOffset, metadata, tensors };
}

/** Reads and validates the header of one safetensors file (8 + N bytes are read, no more). */
export function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  return publicCallAsync('readSafetensorsHeader', arguments, () => readSafetensorsHeaderImpl(file));
}

/** {@link readSafetensorsHeader} without the public guard, for internal callers: what it throws passes through unchanged. */
async function readSafetensorsHeaderImpl(file: string): Promise<SafetensorsHeader> {
  const abs = path.resolve(file);
  let fh;
  try {
    fh = await open(abs, 'r');
  } catch (err) {
    throw formatError(abs, `cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const { size } = await fh.stat();
    if (size < 8) throw formatError(abs, `file is ${size} bytes, too short for the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    await readFully(fh, lenBuf, 0, abs);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) throw formatError(abs, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    if (n > BigInt(size - 8)) throw formatError(abs, `header length ${n} runs past the end of the file (${size} bytes)`);
    const header = Buffer.alloc(Number(n));
    await readFully(fh, header, 8, abs);
    return parseSafetensorsHeader(abs, header, size);
  } finally {
    await fh.close();
  }
}

async function readFully(fh: import('node:fs/promises').FileHandle, buf: Buffer, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw formatError(file, `file ended while reading its header (it shrank?)`);
    done += bytesRead;
  }
}

/** The index of a sharded checkpoint. */
interface ShardIndex {
  metadata: Record<string, unknown>;
  weightMap: Map<string, string>;
}

async function readShardIndex(indexFile: string): Promise<ShardIndex> {
  let text: string;
  try {
    text = await readFile(indexFile, 'utf8');
  } catch (err) {
    throw formatError(indexFile, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw formatError(indexFile, `not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw formatError(indexFile, `must be a JSON object, not ${kindOf(json)}`);
  const dup = findDuplicateKey(text);
  if (dup !== undefined) {
    const where = dup.path.length === 0 ? 'at the top level' : `in ${dup.path.join('.')}`;
    throw formatError(indexFile, `duplicate key ${JSON.stringify(dup.key)} ${where}`);
  }
  const wm = json.weight_map;
  if (!isPlainObject(wm)) throw formatError(indexFile, `weight_map must be an object, not ${kindOf(wm)}`);
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string') throw formatError(indexFile, `weight_map entry ${JSON.stringify(name)} must be a file name, not ${kindOf(shard)}`);
    // Shards are plain names next to the index: anything else could reach outside the folder.
    if (shard === '' || shard === '.' || shard === '..' || shard.includes('/') || shard.includes('\\')) {
      throw formatError(indexFile, `weight_map entry ${JSON.stringify(name)} names ${JSON.stringify(shard)}, which is not a file name in the index's folder`);
    }
    weightMap.set(name, shard);
  }
  const metadata = isPlainObject(json.metadata) ? json.metadata : {};
  return { metadata, weightMap };
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * A validated safetensors checkpoint (one file or a sharded set). Tensors are read through
 * {@link SafetensorsCheckpoint.get} as zero-copy views of the memory-mapped files. Each file is
 * mapped on the first `get` that needs it. Views stay valid after {@link SafetensorsCheckpoint.dispose}:
 * the mapping is released when the checkpoint is disposed and the last view is collected.
 */
export class SafetensorsCheckpoint {
  /** The file or index this checkpoint was opened from (absolute). */
  readonly path: string;
  /** Every tensor, by name. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** Each file's validated header, in shard-name order. */
  readonly headers: readonly SafetensorsHeader[];
  /** The index's `metadata` for a sharded checkpoint, else `{}`. */
  readonly indexMetadata: Readonly<Record<string, unknown>>;
  private readonly maps = new Map<string, NativeMappedFile>();
  private isDisposed = false;

  /** @internal Use {@link openSafetensors}. */
  constructor(
    pathName: string,
    headers: SafetensorsHeader[],
    tensors: Map<string, SafetensorsTensorInfo>,
    indexMetadata: Record<string, unknown> = {},
  ) {
    this.path = pathName;
    this.headers = headers;
    this.tensors = tensors;
    this.indexMetadata = indexMetadata;
  }

  /** Whether {@link SafetensorsCheckpoint.dispose} was called. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Whether a tensor of this name exists. */
  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /**
   * The named tensor as a view of the mapped file (`external: true`), or a copy where external
   * buffers are not allowed. Throws E_INPUT for an unknown name, E_DISPOSED after dispose().
   */
  get(name: string): Tensor {
    if (this.isDisposed) throw new QwenVLError('E_DISPOSED', `${this.path}: checkpoint was disposed`);
    const info = this.tensors.get(name);
    if (info === undefined) throw inputError(`${this.path}: no tensor named ${JSON.stringify(name)}`);
    const handle = this.nativeHandle(info.file);
    const view = native.viewTensor(handle, DTYPE_CODES[info.dtype], [...info.shape], info.byteOffset, info.byteLength);
    return tensorFromNative(view);
  }

  /** Releases the file mappings (views already handed out stay valid). Idempotent. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    for (const h of this.maps.values()) native.closeMappedFile(h);
    this.maps.clear();
  }

  /**
   * The native mapping of one of this checkpoint's files, mapped on first use: native model
   * loading takes it with tensor offsets and builds its own views. Closed by dispose().
   * @internal
   */
  nativeHandle(file: string): NativeMappedFile {
    if (this.isDisposed) throw new QwenVLError('E_DISPOSED', `${this.path}: checkpoint was disposed`);
    let h = this.maps.get(file);
    if (h === undefined) {
      const expected = this.headers.find((x) => x.file === file)?.fileSize;
      if (expected === undefined) throw inputError(`${file} is not a file of checkpoint ${this.path}`);
      const m = native.mapFile(file);
      if (m.size !== expected) {
        native.closeMappedFile(m.handle);
        throw formatError(file, `file changed since its header was read (${expected} bytes then, ${m.size} now)`);
      }
      h = m.handle;
      this.maps.set(file, h);
    }
    return h;
  }
}

async function openSharded(indexFile: string): Promise<SafetensorsCheckpoint> {
  const index = await readShardIndex(indexFile);
  const dir = path.dirname(indexFile);
  const shardNames = [...new Set(index.weightMap.values())].sort();
  const headers = new Map<string, SafetensorsHeader>();
  for (const shard of shardNames) {
    const shardPath = path.join(dir, shard);
    if (!(await isFile(shardPath))) {
      const first = [...index.weightMap].find(([, s]) => s === shard)?.[0] ?? '';
      throw formatError(indexFile, `shard ${JSON.stringify(shard)} (listed for tensor ${JSON.stringify(first)}) does not exist at ${shardPath}`);
    }
    headers.set(shard, await readSafetensorsHeaderImpl(shardPath));
  }
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [, h] of headers) {
    for (const [name, t] of h.tensors) {
      const other = tensors.get(name);
      if (other !== undefined) {
        throw formatError(indexFile, `tensor ${JSON.stringify(name)} is stored in two shards: ${other.file} and ${t.file}`);
      }
      tensors.set(name, t);
    }
  }
  for (const [name, shard] of index.weightMap) {
    const h = headers.get(shard)!;
    if (!h.tensors.has(name)) {
      throw formatError(indexFile, `tensor ${JSON.stringify(name)} is mapped to shard ${JSON.stringify(shard)}, but ${h.file} does not contain it`);
    }
  }
  return new SafetensorsCheckpoint(indexFile, [...headers.values()], tensors, index.metadata);
}

/**
 * Opens a safetensors checkpoint and validates every header. `pathOrDir` is a `.safetensors`
 * file, a `*.safetensors.index.json` index, or a folder holding `model.safetensors.index.json`
 * (preferred) or `model.safetensors`. No tensor data is read until {@link SafetensorsCheckpoint.get}.
 */
export function openSafetensors(pathOrDir: string): Promise<SafetensorsCheckpoint> {
  return publicCallAsync('openSafetensors', arguments, () => openSafetensorsImpl(pathOrDir));
}

/** {@link openSafetensors} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function openSafetensorsImpl(pathOrDir: string): Promise<SafetensorsCheckpoint> {
  if (typeof pathOrDir !== 'string' || pathOrDir === '') throw inputError('openSafetensors expects a path');
  const abs = path.resolve(pathOrDir);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw inputError(`${abs}: no such file or directory`);
  }
  if (st.isDirectory()) {
    const index = path.join(abs, 'model.safetensors.index.json');
    if (await isFile(index)) return openSharded(index);
    const single = path.join(abs, 'model.safetensors');
    if (await isFile(single)) return openSingle(single);
    throw formatError(abs, 'folder has neither model.safetensors nor model.safetensors.index.json');
  }
  if (abs.endsWith('.index.json')) return openSharded(abs);
  return openSingle(abs);
}

async function openSingle(file: string): Promise<SafetensorsCheckpoint> {
  const header = await readSafetensorsHeaderImpl(file);
  return new SafetensorsCheckpoint(file, [header], header.tensors);
}
