import { createRequire } from 'node:module';
import { inputError } from './errors.js';
import { native } from './native/binding.js';
import { publicCall } from './validate.js';

/** What one op family runs on this machine. */
export interface OpFamilyInfo {
  /** The variant the dispatcher picked (the best this CPU supports). */
  chosen: string;
  /**
   * Every variant compiled in, with the instruction set it needs, the device it runs on and, for
   * ops that read weights (matmul, moe), the weight formats it reads.
   */
  variants: { name: string; isa: string; device: string; available: boolean; formats?: string[] }[];
  /** Ops that read weights: the variant the dispatcher runs for each weight format. */
  chosenByFormat?: Record<string, string>;
}

/** CUDA status: a usable device, or the reason there is none. */
export type CudaInfo =
  | { available: true; compiled: true; device: string; memoryBytes: number; deviceCount: number }
  | { available: false; compiled: boolean; reason: string };

/** Facts about this build and machine, as printed by `qwenvl info`. */
export interface Info {
  /** Package version. */
  version: string;
  cpu: { brand: string; physicalCores: number; features: string[] };
  /** Threads in the compute pool. */
  threads: number;
  /** Kernel variant chosen for each op family. */
  ops: Record<string, OpFamilyInfo>;
  /**
   * What `precision: 'fast'` runs here: the bf16 matmul kernel per weight format, the bf16
   * attention kernel (vision tower, prefill) and the bf16 decode-step attention kernel, or null
   * where it runs the exact kernel (no AMX or AVX512-BF16 kernel for it on this CPU). The bf16
   * families' own `chosen` can name a kernel fast passes over.
   */
  fast: { matmulByFormat: Record<string, string | null>; attention: string | null; attentionDecode: string | null };
  cuda: CudaInfo;
  /** Whether tensors reach JS zero-copy (false: copied, as Electron's memory cage requires). */
  externalBuffers: boolean;
}

let cachedVersion: string | undefined;
function packageVersion(): string {
  if (cachedVersion === undefined) {
    const require = createRequire(import.meta.url);
    cachedVersion = (require('../package.json') as { version: string }).version;
  }
  return cachedVersion;
}

/** Reports version, CPU features, chosen kernels, thread count and CUDA availability. */
export function info(): Info {
  return publicCall('info', arguments, infoImpl);
}

/** {@link info} without the public guard, for internal callers: what it throws passes through unchanged. */
export function infoImpl(): Info {
  const n = native.info();
  const cuda: CudaInfo = n.cuda.available
    ? {
        available: true,
        compiled: true,
        device: n.cuda.device ?? 'unknown',
        memoryBytes: n.cuda.memoryBytes ?? 0,
        deviceCount: n.cuda.deviceCount ?? 1,
      }
    : { available: false, compiled: n.cuda.compiled, reason: n.cuda.reason ?? 'unknown' };
  return {
    version: packageVersion(),
    cpu: n.cpu,
    threads: n.threads,
    ops: n.ops,
    fast: n.fast,
    cuda,
    externalBuffers: n.externalBuffers,
  };
}

/** Sets the number of compute threads (default: physical cores): an integer from 1 to 1024. */
export function setThreads(threads: number): void {
  publicCall('setThreads', arguments, () => setThreadsImpl(threads));
}

/** {@link setThreads} without the public guard, for internal callers: what it throws passes through unchanged. */
export function setThreadsImpl(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw inputError(`threads must be an integer from 1 to 1024, got ${typeof threads === 'number' ? String(threads) : typeof threads}`);
  }
  native.setThreads(threads);
}
