/**
 * A resumable JSON parser: the same value as `JSON.parse(text)` (no reviver), written as pausable work
 * ({@link Steps}) so that a multi-megabyte `tokenizer.json` can be parsed in slices between which the event
 * loop runs. `JSON.parse` of the 5 MB Qwen tokenizer is one ~250 ms stall; this costs somewhat more CPU in
 * total but pauses every {@link CHARS_PER_STEP} characters.
 *
 * Only the structure is parsed here. Each string token (with its escapes and `\u` surrogate pairs) is
 * handed to `JSON.parse` itself, and numbers are matched against the JSON grammar before `Number`, so
 * string and number semantics are the engine's own. The parser keeps an explicit stack, so nesting depth
 * does not use the call stack.
 * @internal
 * @module
 */
import { runSliced, runToEnd, type Steps } from './slices.js';

/** How many characters are consumed between two pause points (a single string token is never split). */
export const CHARS_PER_STEP = 16384;

/** A syntax error, with the offset into the text where it was found. */
export class JsonSliceError extends SyntaxError {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
    this.name = 'SyntaxError';
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

interface Frame {
  readonly value: Record<string, unknown> | unknown[];
  readonly isArray: boolean;
  key: string;
  /** An object's keys as they came, duplicates included (arrays: empty). */
  readonly keys: string[];
}

/** Objects with at least this many keys remember their keys (see {@link ownKeysSteps}). */
export const LARGE_OBJECT_KEYS = 1024;

/** The keys, in text order, of each large object this parser made. */
const largeObjectKeys = new WeakMap<object, readonly string[]>();

/** `JSON.parse(text)` as pausable work. */
export function* parseJsonSteps(text: string): Steps<unknown> {
  const n = text.length;
  let i = 0;
  let nextPause = CHARS_PER_STEP;
  const stack: Frame[] = [];

  const skipWs = () => {
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
    }
  };
  const unexpected = (): JsonSliceError =>
    i >= n
      ? new JsonSliceError('Unexpected end of JSON input', n)
      : new JsonSliceError(`Unexpected token ${JSON.stringify(text[i])}`, i);
  /** The string token starting at `i` (a '"'); leaves `i` after its closing quote. */
  const readString = (): string => {
    const start = i;
    let j = i + 1;
    for (;;) {
      const q = text.indexOf('"', j);
      if (q < 0) throw new JsonSliceError('Unterminated string in JSON', n);
      let bs = 0;
      for (let k = q - 1; k > start && text.charCodeAt(k) === 0x5c; k--) bs++;
      if (bs % 2 === 1) {
        j = q + 1;
        continue;
      }
      i = q + 1;
      break;
    }
    // Through JSON.parse, which also copies the token: a slice could keep the whole text alive.
    const token = text.slice(start, i);
    try {
      return JSON.parse(token) as string;
    } catch (e) {
      const m = /position (\d+)/.exec((e as Error).message);
      const at = m ? start + Number(m[1]) : start;
      throw new JsonSliceError(`Bad string in JSON (${(e as Error).message})`, at);
    }
  };
  /** An object key and its ':' with the surrounding whitespace; leaves `i` at the value. */
  const readKey = (): string => {
    if (text.charCodeAt(i) !== 0x22) throw unexpected();
    const key = readString();
    skipWs();
    if (text.charCodeAt(i) !== 0x3a) throw unexpected();
    i++;
    skipWs();
    return key;
  };
  const store = (f: Frame, v: unknown) => {
    if (f.isArray) (f.value as unknown[]).push(v);
    // JSON.parse makes "__proto__" an own property; plain assignment would set the prototype instead.
    else if (f.key === '__proto__') {
      Object.defineProperty(f.value, f.key, { value: v, writable: true, enumerable: true, configurable: true });
    } else (f.value as Record<string, unknown>)[f.key] = v;
  };

  skipWs();
  for (;;) {
    // A value starts at i.
    let value: unknown;
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      i++;
      skipWs();
      if (text.charCodeAt(i) === 0x7d) {
        i++;
        value = {};
      } else {
        const key = readKey();
        stack.push({ value: {}, isArray: false, key, keys: [key] });
        continue;
      }
    } else if (c === 0x5b /* [ */) {
      i++;
      skipWs();
      if (text.charCodeAt(i) === 0x5d) {
        i++;
        value = [];
      } else {
        stack.push({ value: [], isArray: true, key: '', keys: [] });
        continue;
      }
    } else if (c === 0x22) {
      value = readString();
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) {
        i++;
        throw unexpected();
      }
      i += m[0].length;
      value = Number(m[0]);
    } else if (text.startsWith('true', i)) {
      i += 4;
      value = true;
    } else if (text.startsWith('false', i)) {
      i += 5;
      value = false;
    } else if (text.startsWith('null', i)) {
      i += 4;
      value = null;
    } else {
      throw unexpected();
    }

    // Store the value, closing every container it completes; stop where the next value starts.
    for (;;) {
      skipWs();
      const top = stack[stack.length - 1];
      if (top === undefined) {
        if (i < n) throw new JsonSliceError(`Unexpected non-whitespace character after JSON`, i);
        return value;
      }
      store(top, value);
      const d = text.charCodeAt(i);
      if (d === 0x2c /* , */) {
        i++;
        skipWs();
        if (!top.isArray) {
          top.key = readKey();
          top.keys.push(top.key);
        }
        break;
      }
      if (d === (top.isArray ? 0x5d : 0x7d)) {
        i++;
        stack.pop();
        value = top.value;
        if (top.keys.length >= LARGE_OBJECT_KEYS) largeObjectKeys.set(top.value, top.keys);
        continue;
      }
      throw unexpected();
    }
    if (i >= nextPause) {
      nextPause = i + CHARS_PER_STEP;
      yield;
    }
  }
}

/** Keys handled between two pause points of {@link ownKeysSteps}. */
const KEYS_PER_STEP = 8192;

/** Canonical array indices, which every engine lists first and in numeric order. */
const ARRAY_INDEX = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * `Object.keys(obj)` as pausable work. `Object.keys` of the 150k-entry vocabulary is a single ~30 ms call;
 * for a large object made by {@link parseJsonSteps} the same list (array indices first in numeric order,
 * then the other keys in the order they were first defined) is derived from the remembered keys in steps.
 * Any other object gets `Object.keys` itself.
 */
export function* ownKeysSteps(obj: object): Steps<string[]> {
  const seen = largeObjectKeys.get(obj);
  if (seen === undefined) return Object.keys(obj);
  const unique = new Set<string>();
  const indices: string[] = [];
  const others: string[] = [];
  for (let k = 0; k < seen.length; k++) {
    const key = seen[k];
    if (!unique.has(key)) {
      unique.add(key);
      if (ARRAY_INDEX.test(key) && Number(key) < 2 ** 32 - 1) indices.push(key);
      else others.push(key);
    }
    if (k % KEYS_PER_STEP === KEYS_PER_STEP - 1) yield;
  }
  indices.sort((a, b) => Number(a) - Number(b));
  for (let k = 0; k < others.length; k++) {
    indices.push(others[k]);
    if (k % KEYS_PER_STEP === KEYS_PER_STEP - 1) yield;
  }
  return indices;
}

/** Bytes decoded between two pause points of {@link decodeUtf8Steps}. */
const BYTES_PER_STEP = 1 << 20;

/**
 * `bytes.toString('utf8')` (a byte-order mark kept, bad sequences as U+FFFD) as pausable work: decoding a
 * 10 MB tokenizer.json in one call is a ~40 ms span.
 */
export function* decodeUtf8Steps(bytes: Uint8Array): Steps<string> {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const parts: string[] = [];
  for (let at = 0; at < bytes.length; at += BYTES_PER_STEP) {
    const end = Math.min(bytes.length, at + BYTES_PER_STEP);
    parts.push(decoder.decode(bytes.subarray(at, end), { stream: end < bytes.length }));
    yield;
  }
  parts.push(decoder.decode());
  return parts.join('');
}

/** `JSON.parse(text)` in one go (the same code path as the sliced parse). */
export function parseJsonSync(text: string): unknown {
  return runToEnd(parseJsonSteps(text));
}

/** `JSON.parse(text)`, letting the event loop run between slices. */
export function parseJsonSliced(text: string): Promise<unknown> {
  return runSliced(parseJsonSteps(text));
}
