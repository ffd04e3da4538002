/**
 * Argument checking shared by the public entry points: options objects are read once, inside a guard
 * (a getter or proxy that throws becomes E_INPUT), into plain values that are then checked; any other
 * error escaping from reading caller data becomes E_INPUT naming the argument.
 * @internal
 * @module
 */
import { QwenVLError, inputError } from './errors.js';

/** Whether `v` is a revoked proxy: the one value `Array.isArray` throws on. */
function isRevokedProxy(v: unknown): boolean {
  try {
    Array.isArray(v);
    return false;
  } catch {
    return true;
  }
}

/** A short description of a received value for error messages: its type and, for primitives, its value. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (isRevokedProxy(v)) return 'a revoked proxy';
  if (Array.isArray(v)) {
    try {
      return `an array of length ${v.length}`;
    } catch {
      return 'an array'; // a proxy that throws
    }
  }
  switch (typeof v) {
    case 'string':
      return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${typeof v} ${String(v)}`;
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default: {
      let name = 'an object';
      try {
        const ctor = Object.getPrototypeOf(v)?.constructor?.name;
        if (typeof ctor === 'string' && ctor !== 'Object') name = `a ${ctor}`;
      } catch {
        // A proxy may throw here too; "an object" is description enough.
      }
      return name;
    }
  }
}

/** E_INPUT: `where` expected `expected`, got `v`. */
export function expected(where: string, what: string, v: unknown): QwenVLError {
  return inputError(`${where}: expected ${what}, got ${describe(v)}`);
}

/** The error as a QwenVLError: itself, or E_INPUT saying that reading `where` failed. */
export function asQwenError(e: unknown, where: string): QwenVLError {
  if (e instanceof QwenVLError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new QwenVLError('E_INPUT', `${where}: invalid argument (${msg})`, { cause: e });
}

/** Runs `fn`; a non-QwenVLError it throws becomes E_INPUT about `where`. */
export function guard<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asQwenError(e, where);
  }
}

/** Async {@link guard}. */
export async function guardAsync<T>(where: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asQwenError(e, where);
  }
}

/**
 * Reads the listed keys of an options argument (undefined or a plain object) into a fresh object.
 * Reading happens once, so a getter cannot answer differently to the check and to the use.
 */
export function readOptions<K extends string>(
  where: string,
  v: unknown,
  keys: readonly K[],
): Partial<Record<K, unknown>> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || isRevokedProxy(v) || Array.isArray(v)) throw expected(where, 'an options object', v);
  const out: Partial<Record<K, unknown>> = {};
  for (const k of keys) {
    let x: unknown;
    try {
      x = (v as Record<string, unknown>)[k];
    } catch (e) {
      throw new QwenVLError('E_INPUT', `${where}.${k}: reading it threw (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
    if (x !== undefined) out[k] = x;
  }
  return out;
}

/** An optional boolean. */
export function optBoolean(where: string, v: unknown): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  throw expected(where, 'a boolean', v);
}

/** An optional integer in [min, max]. */
export function optInteger(where: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw expected(where, `an integer in [${min}, ${max}]`, v);
  }
  return v;
}

/** Most elements read from an array argument before refusing it (a sparse array of length 2^32-1 would hang). */
export const MAX_LIST = 1 << 26;

/** A real array (not array-like) of at most {@link MAX_LIST} elements. */
export function checkArray(where: string, v: unknown, what = 'an array', max = MAX_LIST): readonly unknown[] {
  if (isRevokedProxy(v) || !Array.isArray(v)) throw expected(where, what, v);
  const length = guard(where, () => v.length); // a proxy may throw here
  if (length > max) throw inputError(`${where}: ${length} elements is more than the ${max} accepted`);
  return v;
}

/** Whether `v` is an instance of `cls`, false where asking throws (a proxy). */
export function isInstance(v: unknown, cls: abstract new (...args: never[]) => unknown): boolean {
  try {
    return v instanceof cls;
  } catch {
    return false;
  }
}

/** Refuses an array argument of more than {@link MAX_LIST} elements (a sparse array of length 2^32-1 would keep a loop busy for minutes). */
function checkArrayArguments(name: string, args: IArguments): void {
  for (let i = 0; i < args.length; i++) {
    const a: unknown = args[i];
    if (Array.isArray(a)) checkArray(`${name}: argument ${i + 1}`, a); // Array.isArray throws on a revoked proxy
  }
}

/**
 * The body of the exported library function `name`, called with `args` (its `arguments`, so that extra
 * arguments are checked too): an array argument of more than {@link MAX_LIST} elements is refused, and
 * anything `body` throws that is not a QwenVLError becomes E_INPUT naming the function. Internal callers
 * call the unguarded implementation, so that their errors and hot loops stay as they are.
 */
export function publicCall<T>(name: string, args: IArguments, body: () => T): T {
  try {
    checkArrayArguments(name, args);
    return body();
  } catch (e) {
    throw asQwenError(e, name);
  }
}

/** Async {@link publicCall}: every failure, the argument checks' included, is a rejection with a QwenVLError. */
export async function publicCallAsync<T>(name: string, args: IArguments, body: () => Promise<T>): Promise<T> {
  try {
    checkArrayArguments(name, args);
    return await body();
  } catch (e) {
    throw asQwenError(e, name);
  }
}
