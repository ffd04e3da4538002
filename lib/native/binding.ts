/**
 * The typed contract of the native addon and its loader. Nothing else in lib/ calls
 * node-gyp-build; everything reaches native code through `native`.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { QwenVLError } from '../errors.js';

/** @internal */
export interface NativeOpInfo {
  chosen: string;
  variants: { name: string; isa: string; available: boolean }[];
}

/** @internal */
export interface NativeInfo {
  cpu: { brand: string; physicalCores: number; features: string[] };
  threads: number;
  ops: Record<string, NativeOpInfo>;
  cuda: {
    compiled: boolean;
    available: boolean;
    device?: string;
    memoryBytes?: number;
    deviceCount?: number;
    reason?: string;
    runtimeVersion?: number;
    driverVersion?: number;
  };
  externalBuffers: boolean;
}

/** @internal */
export interface NativeParityResult {
  op: string;
  variant: string;
  shape: string;
  maxAbsErr: number;
  maxRelErr: number;
  tolerance: number;
  guardsOk: boolean;
  passed: boolean;
  note: string;
}

/** @internal */
export interface NativeBinding {
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
  info(): NativeInfo;
  setThreads(n: number): void;
  parity(filter?: string, seed?: number): Promise<NativeParityResult[]>;
  parityOps(): string[];
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  // lib/native/ under vitest and dist/native/ after tsc: the package root is two levels up.
  const root = fileURLToPath(new URL('../..', import.meta.url));
  let binding: NativeBinding;
  try {
    binding = require('node-gyp-build')(root) as NativeBinding;
  } catch (err) {
    throw new QwenVLError(
      'E_NATIVE',
      `qwenvl: no native addon for ${process.platform}-${process.arch} (node ${process.version}) could be loaded. ` +
        'Install a matching prebuild, or build from source with a C++17 compiler and cmake (npm run build:native). ' +
        `Cause: ${(err as Error).message}`,
      { cause: err },
    );
  }
  binding.setErrorClass(QwenVLError as unknown as new (code: string, message: string) => Error);
  return binding;
}

/** @internal */
export const native: NativeBinding = load();
