/**
 * JSON values found in free text, as models write them: inside code fences or not, with prose
 * around, with trailing commas, and cut off at the end (maxTokens) or broken in the middle.
 *
 * A small tolerant parser reads from every `[` or `{` of the text. Where the text stops or stops
 * being JSON, the containers still open are kept with what they had completed so far and marked
 * incomplete ({@link JsonScan.isIncomplete}); the reader of the tree decides what a partial container is
 * worth (the grounding reader keeps the complete objects of a truncated list). Scanning goes on
 * after the point where a value ended or broke, so the whole text is read once: linear time, and
 * nesting is bounded, so hostile text cannot exhaust the stack.
 * @internal
 * @module
 */

/** Deepest nesting followed; deeper text is treated as broken. */
const MAX_DEPTH = 64;


/** What {@link findJsonValues} found in one text. */
export interface JsonScan {
  /** The values, in order. */
  found: FoundJson[];
  /** Whether an object (not an array: only objects are tracked) was cut off before its closing brace. */
  isIncomplete(v: object): boolean;
  /** Where an object (not an array) starts in the text. */
  offsetOf(v: object): number;
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

const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD = /true|false|null/y;
/** What a primitive that could not be read returns (no exceptions: they cost more than the parse). */
const FAIL = Symbol('fail');

/** A reader from one offset. Its methods return false where the text stops being JSON. */
class Reader {
  pos: number;
  /** Containers opened and not yet closed. */
  readonly open: object[] = [];
  constructor(
    readonly text: string,
    start: number,
    /** Start offset of every object (a plain Map: weak collections cost more than the parse). */
    readonly offsets: Map<object, number>,
  ) {
    this.pos = start;
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length && (t[this.pos] === ' ' || t[this.pos] === '\n' || t[this.pos] === '\r' || t[this.pos] === '\t')) this.pos++;
  }

  /** Reads one value and hands it to `attach` as soon as it exists (containers before their content). */
  value(attach: (v: unknown) => void, depth: number): boolean {
    this.ws();
    const c = this.text[this.pos];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) return false;
      const box: object = c === '{' ? {} : [];
      if (c === '{') this.offsets.set(box, this.pos);
      attach(box);
      this.open.push(box);
      this.pos++;
      const ok = c === '{' ? this.members(box as Record<string, unknown>, depth + 1) : this.elements(box as unknown[], depth + 1);
      if (ok) this.open.pop();
      return ok;
    }
    const v = this.primitive();
    if (v === FAIL) return false;
    attach(v);
    return true;
  }

  elements(a: unknown[], depth: number): boolean {
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return true;
    }
    for (;;) {
      if (!this.value((v) => a.push(v), depth)) return false;
      this.ws();
      const c = this.text[this.pos];
      if (c === ']') {
        this.pos++;
        return true;
      }
      if (c !== ',') return false;
      this.pos++;
      this.ws();
      // A trailing comma.
      if (this.text[this.pos] === ']') {
        this.pos++;
        return true;
      }
    }
  }

  members(o: Record<string, unknown>, depth: number): boolean {
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return true;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') return false;
      const key = this.string();
      if (key === FAIL) return false;
      this.ws();
      if (this.text[this.pos] !== ':') return false;
      this.pos++;
      // An own property even for "__proto__", as JSON.parse makes it.
      if (!this.value((v) => Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true }), depth)) return false;
      this.ws();
      const c = this.text[this.pos];
      if (c === '}') {
        this.pos++;
        return true;
      }
      if (c !== ',') return false;
      this.pos++;
      this.ws();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return true;
      }
    }
  }

  string(): string | typeof FAIL {
    const t = this.text;
    let i = this.pos + 1;
    while (i < t.length && t[i] !== '"') i += t[i] === '\\' ? 2 : 1;
    if (i >= t.length) return FAIL;
    let s: unknown;
    try {
      s = JSON.parse(t.slice(this.pos, i + 1));
    } catch {
      return FAIL;
    }
    this.pos = i + 1;
    return s as string;
  }

  primitive(): unknown {
    const t = this.text;
    if (t[this.pos] === '"') return this.string();
    for (const re of [NUMBER, WORD]) {
      re.lastIndex = this.pos;
      const m = re.exec(t);
      if (m) {
        this.pos += m[0].length;
        return JSON.parse(m[0]) as unknown;
      }
    }
    return FAIL;
  }
}

/**
 * Every JSON object or array in `text`, in order; values nested in a found one are not listed
 * again. Never throws on any text.
 */
export function findJsonValues(text: string): JsonScan {
  const found: FoundJson[] = [];
  const offsets = new Map<object, number>();
  const incomplete = new Set<object>();
  let i = 0;
  // Next '[' and '{' at or after i (-1: none left), each searched again only once passed, so that
  // text without one of them is not rescanned to its end for every value.
  let a = -2, b = -2;
  while (i < text.length) {
    if (a !== -1 && a < i) a = text.indexOf('[', i);
    if (b !== -1 && b < i) b = text.indexOf('{', i);
    const start = a < 0 ? b : b < 0 ? a : Math.min(a, b);
    if (start < 0) break;
    const r = new Reader(text, start, offsets);
    let root: object | undefined;
    const complete = r.value((v) => (root = v as object), 0);
    if (!complete) for (const o of r.open) if (!Array.isArray(o)) incomplete.add(o);
    if (root !== undefined) found.push({ value: root, start, complete });
    // Past what was read: the partial tree already holds everything that completed inside it.
    i = Math.max(r.pos, start + 1);
  }
  return { found, isIncomplete: (v) => incomplete.has(v), offsetOf: (v) => offsets.get(v) ?? 0 };
}
