/**
 * JSON values found in free text, as models write them: inside code fences or not, with prose
 * around, with trailing commas, and cut off at the end (maxTokens) or broken in the middle.
 *
 * A small tolerant parser reads from every `[` or `{` of the text. Where the text stops or stops
 * being JSON, the containers still open are kept with what they had completed so far and marked
 * incomplete ({@link isIncomplete}); the reader of the tree decides what a partial container is
 * worth (the grounding reader keeps the complete objects of a truncated list). Scanning goes on
 * after the point where a value ended or broke, so the whole text is read once: linear time, and
 * nesting is bounded, so hostile text cannot exhaust the stack.
 * @internal
 * @module
 */

/** Deepest nesting followed; deeper text is treated as broken. */
const MAX_DEPTH = 64;

const incomplete = new WeakSet<object>();
const offsets = new WeakMap<object, number>();

/** Whether an object or array was cut off before its closing bracket. */
export function isIncomplete(v: object): boolean {
  return incomplete.has(v);
}

/** Where an object or array found by {@link findJsonValues} starts in the text. */
export function offsetOf(v: object): number {
  return offsets.get(v) ?? 0;
}

/** One value found in the text. */
export interface FoundJson {
  /** The object or array (partial when `complete` is false). */
  value: object;
  /** Offset of its first character. */
  start: number;
  /** Whether it was read to its closing bracket. */
  complete: boolean;
}

class Stop {}
const STOP = new Stop();

const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD = /true|false|null/y;

class Reader {
  pos: number;
  /** Containers opened and not yet closed. */
  readonly open: object[] = [];
  constructor(
    readonly text: string,
    start: number,
  ) {
    this.pos = start;
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length && (t[this.pos] === ' ' || t[this.pos] === '\n' || t[this.pos] === '\r' || t[this.pos] === '\t')) this.pos++;
  }

  /** Reads one value and hands it to `attach` as soon as it exists (containers before their content). */
  value(attach: (v: unknown) => void, depth: number): void {
    this.ws();
    const c = this.text[this.pos];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) throw STOP;
      const box: object = c === '{' ? {} : [];
      offsets.set(box, this.pos);
      attach(box);
      this.open.push(box);
      this.pos++;
      if (c === '{') this.members(box as Record<string, unknown>, depth + 1);
      else this.elements(box as unknown[], depth + 1);
      this.open.pop();
      return;
    }
    attach(this.primitive());
  }

  elements(a: unknown[], depth: number): void {
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (;;) {
      this.value((v) => a.push(v), depth);
      this.ws();
      const c = this.text[this.pos];
      if (c === ']') {
        this.pos++;
        return;
      }
      if (c !== ',') throw STOP;
      this.pos++;
      this.ws();
      // A trailing comma.
      if (this.text[this.pos] === ']') {
        this.pos++;
        return;
      }
    }
  }

  members(o: Record<string, unknown>, depth: number): void {
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') throw STOP;
      const key = this.string();
      this.ws();
      if (this.text[this.pos] !== ':') throw STOP;
      this.pos++;
      // An own property even for "__proto__", as JSON.parse makes it.
      this.value((v) => Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true }), depth);
      this.ws();
      const c = this.text[this.pos];
      if (c === '}') {
        this.pos++;
        return;
      }
      if (c !== ',') throw STOP;
      this.pos++;
      this.ws();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return;
      }
    }
  }

  string(): string {
    const t = this.text;
    let i = this.pos + 1;
    while (i < t.length && t[i] !== '"') i += t[i] === '\\' ? 2 : 1;
    if (i >= t.length) throw STOP;
    let s: unknown;
    try {
      s = JSON.parse(t.slice(this.pos, i + 1));
    } catch {
      throw STOP;
    }
    this.pos = i + 1;
    return s as string;
  }

  primitive(): unknown {
    const t = this.text;
    const c = t[this.pos];
    if (c === '"') return this.string();
    for (const re of [NUMBER, WORD]) {
      re.lastIndex = this.pos;
      const m = re.exec(t);
      if (m) {
        this.pos += m[0].length;
        return JSON.parse(m[0]) as unknown;
      }
    }
    throw STOP;
  }
}

/**
 * Every JSON object or array in `text`, in order; values nested in a found one are not listed
 * again. Never throws on any text.
 */
export function findJsonValues(text: string): FoundJson[] {
  const found: FoundJson[] = [];
  let i = 0;
  while (i < text.length) {
    const a = text.indexOf('[', i), b = text.indexOf('{', i);
    const start = a < 0 ? b : b < 0 ? a : Math.min(a, b);
    if (start < 0) break;
    const r = new Reader(text, start);
    let root: object | undefined;
    let complete = true;
    try {
      r.value((v) => (root = v as object), 0);
    } catch (e) {
      if (e !== STOP) throw e;
      complete = false;
      for (const o of r.open) incomplete.add(o);
    }
    if (root !== undefined) found.push({ value: root, start, complete });
    // Past what was read: the partial tree already holds everything that completed inside it.
    i = Math.max(r.pos, start + 1);
  }
  return found;
}
